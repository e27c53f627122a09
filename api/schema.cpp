#include "api/schema.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <set>
#include <stdexcept>
#include <unordered_set>

namespace berth::api {

namespace embedded {
extern const char kSchemaTypesJson[];
extern const std::size_t kSchemaTypesJson_size;
}  // namespace embedded

using nlohmann::json;

namespace {

const std::set<std::string, std::less<>> kPrimitives = {"string", "bool", "int32", "int64", "double",
                                                        "float", "bytes", "uint32", "uint64"};

// Splits "core/v1.Container" into package "core/v1" and name "Container".
std::pair<std::string, std::string> split_id(std::string_view id) {
  auto dot = id.rfind('.');
  if (dot == std::string_view::npos) return {"", std::string(id)};
  return {std::string(id.substr(0, dot)), std::string(id.substr(dot + 1))};
}

}  // namespace

const FieldDef* TypeDef::json_field(std::string_view name) const {
  auto it = by_json_.find(name);
  return it == by_json_.end() ? nullptr : it->second;
}

const FieldDef* TypeDef::proto_field(int number) const {
  if (number <= 0 || static_cast<size_t>(number) >= by_proto_.size()) return nullptr;
  return by_proto_[number];
}

Schema::~Schema() = default;

const Schema& Schema::get() {
  static const std::unique_ptr<Schema> schema =
      parse(std::string_view(embedded::kSchemaTypesJson, embedded::kSchemaTypesJson_size));
  return *schema;
}

std::unique_ptr<Schema> Schema::parse(std::string_view text) {
  std::unique_ptr<Schema> s(new Schema());
  s->load(text);
  return s;
}

void Schema::load(std::string_view text) {
  json doc = json::parse(text);
  for (auto& [pkg, prefix] : doc.at("packages").items()) packages_[pkg] = prefix.get<std::string>();

  auto definition_of = [&](const std::string& id) {
    auto [pkg, name] = split_id(id);
    auto it = packages_.find(pkg);
    if (it == packages_.end()) throw std::runtime_error("schema: unknown package " + pkg);
    return it->second + "." + name;
  };

  // First pass: every type exists, so references resolve in any order.
  const json& types = doc.at("types");
  for (auto& [id, t] : types.items()) {
    auto td = std::make_unique<TypeDef>();
    td->id = id;
    td->definition = definition_of(id);
    td->scalar = t.value("s", "");
    td->map_type = t.value("mt", "");
    td->description = t.value("d", "");
    types_.emplace(id, std::move(td));
  }

  std::function<TypeShape(const std::string&, const std::string&)> shape_of =
      [&](const std::string& pkg, const std::string& s) -> TypeShape {
    TypeShape shape;
    if (s.rfind("[]", 0) == 0 || s.rfind("{}", 0) == 0) {
      shape.kind = s[0] == '[' ? TypeShape::Kind::List : TypeShape::Kind::Map;
      shape.element = std::make_shared<TypeShape>(shape_of(pkg, s.substr(2)));
      return shape;
    }
    if (kPrimitives.count(s)) {
      shape.primitive = s;
      return shape;
    }
    std::string id = s.find('.') == std::string::npos ? pkg + "." + s : s;
    auto it = types_.find(id);
    if (it == types_.end()) throw std::runtime_error("schema: unknown type " + id);
    shape.kind = TypeShape::Kind::Named;
    shape.named = it->second.get();
    return shape;
  };

  for (auto& [id, t] : types.items()) {
    TypeDef& td = *types_.at(id);
    auto pkg = split_id(id).first;
    if (!t.contains("f")) continue;
    for (const json& f : t.at("f")) {
      FieldDef fd;
      fd.name = f.at(0).get<std::string>();
      fd.shape = shape_of(pkg, f.at(1).get<std::string>());
      fd.proto = f.at(2).get<int>();
      std::string flags = f.at(3).get<std::string>();
      fd.omitempty = flags.find('o') != std::string::npos;
      fd.pointer = flags.find('p') != std::string::npos;
      fd.required = flags.find('r') != std::string::npos;
      if (f.size() > 4) {
        const json& x = f.at(4);
        fd.patch_strategy = x.value("ps", "");
        fd.merge_key = x.value("mk", "");
        fd.list_type = x.value("lt", "");
        fd.map_type = x.value("mt", "");
        fd.description = x.value("d", "");
        if (x.contains("lk")) fd.list_map_keys = x.at("lk").get<std::vector<std::string>>();
      }
      td.fields.push_back(std::move(fd));
    }
  }

  // Indexes: JSON members through inlined types, protobuf numbers of declared fields.
  std::set<const TypeDef*> done;
  std::function<void(TypeDef&)> index = [&](TypeDef& td) {
    if (done.count(&td)) return;
    done.insert(&td);
    int max_proto = 0;
    for (const FieldDef& f : td.fields) max_proto = std::max(max_proto, f.proto);
    td.by_proto_.assign(max_proto + 1, nullptr);
    for (const FieldDef& f : td.fields) {
      if (f.proto > 0) td.by_proto_[f.proto] = &f;
      if (f.name.empty()) {
        if (f.shape.kind != TypeShape::Kind::Named) throw std::runtime_error("schema: inline non-struct in " + td.id);
        auto& child = *types_.at(f.shape.named->id);
        index(child);
        for (const FieldDef* cf : child.flat_) {
          td.flat_.push_back(cf);
          td.by_json_.emplace(cf->name, cf);
        }
      } else {
        td.flat_.push_back(&f);
        td.by_json_.emplace(f.name, &f);
      }
    }
  };
  for (auto& [id, td] : types_) index(*td);

  auto type_at = [&](const std::string& id) -> const TypeDef* {
    auto it = types_.find(id);
    if (it == types_.end()) throw std::runtime_error("schema: kind with unknown type " + id);
    return it->second.get();
  };
  for (const json& k : doc.at("kinds")) {
    KindInfo ki;
    ki.group = k.at("g").get<std::string>();
    ki.version = k.at("v").get<std::string>();
    ki.kind = k.at("k").get<std::string>();
    ki.plural = k.value("p", "");
    ki.namespaced = k.value("ns", false);
    ki.type = type_at(k.at("t").get<std::string>());
    if (k.contains("sub"))
      for (auto& [name, t] : k.at("sub").items()) ki.subresources[name] = type_at(t.get<std::string>());
    auto split_csv = [](const std::string& s) {
      std::vector<std::string> out;
      size_t start = 0;
      while (start < s.size()) {
        size_t comma = s.find(',', start);
        if (comma == std::string::npos) comma = s.size();
        out.push_back(s.substr(start, comma - start));
        start = comma + 1;
      }
      return out;
    };
    ki.verbs = split_csv(k.value("verbs", ""));
    if (k.contains("short")) ki.short_names = k.at("short").get<std::vector<std::string>>();
    if (k.contains("cat")) ki.categories = k.at("cat").get<std::vector<std::string>>();
    std::string list_type = k.value("list", "");
    kinds_.push_back(ki);
    if (!list_type.empty()) {
      KindInfo li;
      li.group = ki.group;
      li.version = ki.version;
      li.type = type_at(list_type);
      li.kind = split_id(list_type).second;
      kinds_.back().list_kind = li.kind;
      kinds_.push_back(li);
    }
  }
}

const KindInfo* Schema::find_kind(std::string_view group, std::string_view version, std::string_view kind) const {
  const KindInfo* meta = nullptr;
  for (const KindInfo& k : kinds_) {
    if (k.kind != kind) continue;
    if (k.group == group && k.version == version) return &k;
    if (k.group == "meta.k8s.io") meta = &k;
  }
  return meta;
}

const KindInfo* Schema::find_resource(std::string_view group, std::string_view version,
                                      std::string_view plural) const {
  for (const KindInfo& k : kinds_)
    if (!k.plural.empty() && k.plural == plural && k.group == group && k.version == version) return &k;
  return nullptr;
}

const TypeDef* Schema::find_type(std::string_view id) const {
  auto it = types_.find(id);
  return it == types_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Schema::group_versions() const {
  std::vector<std::string> out;
  for (const KindInfo& k : kinds_) {
    if (k.plural.empty()) continue;
    std::string gv = k.api_version();
    if (std::find(out.begin(), out.end(), gv) == out.end()) out.push_back(gv);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Strategic merge metadata and strict field checks

namespace {

// The struct type a shape finally holds after lists and maps, or nullptr.
const TypeDef* struct_of(const TypeShape& s) {
  const TypeShape* cur = &s;
  while (cur->kind == TypeShape::Kind::List || cur->kind == TypeShape::Kind::Map) cur = cur->element.get();
  if (cur->kind != TypeShape::Kind::Named || !cur->named->scalar.empty()) return nullptr;
  return cur->named;
}

}  // namespace

const FieldDef* Schema::field_at(const GroupVersionKind& gvk, std::string_view path) const {
  const KindInfo* k = find_kind(gvk);
  if (!k || path.empty()) return nullptr;
  const TypeDef* type = k->type;
  const TypeShape* map = nullptr;  // set when the next segment is a key of this map
  const FieldDef* field = nullptr;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = std::min(path.find('.', start), path.size());
    std::string_view seg = path.substr(start, dot - start);
    start = dot + 1;
    if (seg.empty()) return nullptr;
    const TypeShape* cur;
    if (map) {
      field = nullptr;
      cur = map->element.get();
    } else {
      if (!type) return nullptr;
      field = type->json_field(seg);
      if (!field) return nullptr;
      cur = &field->shape;
    }
    while (cur->kind == TypeShape::Kind::List) cur = cur->element.get();
    map = cur->kind == TypeShape::Kind::Map ? cur : nullptr;
    type = map ? nullptr : struct_of(*cur);
  }
  return field;
}

namespace {

// What Go's encoding/json writes for a zero value of this field; discarded when it omits it.
json zero_of_field(const FieldDef& f, bool& omit);

json zero_of_struct(const TypeDef& t) {
  json obj = json::object();
  for (const FieldDef* f : t.json_fields()) {
    bool omit = false;
    json v = zero_of_field(*f, omit);
    if (!omit) obj[f->name] = std::move(v);
  }
  return obj;
}

json zero_of_field(const FieldDef& f, bool& omit) {
  omit = false;
  if (f.pointer) {
    omit = f.omitempty;
    return nullptr;
  }
  const TypeShape& s = f.shape;
  if (s.kind == TypeShape::Kind::List || s.kind == TypeShape::Kind::Map) {
    omit = f.omitempty;
    return nullptr;
  }
  if (s.kind == TypeShape::Kind::Primitive) {
    omit = f.omitempty;
    if (s.primitive == "string" || s.primitive == "bytes") return "";
    if (s.primitive == "bool") return false;
    return 0;
  }
  const TypeDef* t = s.named;
  // Structs are never "empty" to encoding/json, omitempty or not; custom scalars marshal themselves.
  if (t->scalar.empty()) return zero_of_struct(*t);
  if (t->scalar == "quantity") return "0";
  if (t->scalar == "intstr") return 0;
  if (t->scalar == "duration") return "0s";
  return nullptr;  // time, microtime, raw, fieldsv1
}

}  // namespace

const json& Schema::zero_object(const GroupVersionKind& gvk) const {
  static const json empty = json::object();
  const KindInfo* k = find_kind(gvk);
  if (!k || !k->type) return empty;
  // Every create asks for it; a pod's walks hundreds of schema fields, so it is kept (and
  // never dropped: the reference stays valid).
  std::string key = gvk.group + "/" + gvk.version + "/" + gvk.kind;
  std::lock_guard lock(cache_mu_);
  auto it = zero_cache_.find(key);
  if (it == zero_cache_.end()) it = zero_cache_.emplace(key, zero_of_struct(*k->type)).first;
  return it->second;
}

SchemaPatchMeta Schema::patch_meta(const GroupVersionKind& gvk, std::string_view path) const {
  const FieldDef* field = field_at(gvk, path);
  if (!field) return {};
  return {field->patch_strategy, field->merge_key};
}

namespace {

void walk_unknown(const TypeShape& shape, const json& v, std::string& path, std::vector<std::string>& out);

void walk_struct(const TypeDef& t, const json& v, std::string& path, std::vector<std::string>& out) {
  if (!v.is_object() || !t.scalar.empty()) return;
  for (auto it = v.begin(); it != v.end(); ++it) {
    size_t len = path.size();
    if (!path.empty()) path += '.';
    path += it.key();
    const FieldDef* f = t.json_field(it.key());
    if (!f) {
      if (out.size() < 100) out.push_back(path);
    } else {
      walk_unknown(f->shape, it.value(), path, out);
    }
    path.resize(len);
  }
}

void walk_unknown(const TypeShape& shape, const json& v, std::string& path, std::vector<std::string>& out) {
  switch (shape.kind) {
    case TypeShape::Kind::Primitive:
      return;
    case TypeShape::Kind::Named:
      walk_struct(*shape.named, v, path, out);
      return;
    case TypeShape::Kind::List:
      if (!v.is_array()) return;
      for (size_t i = 0; i < v.size(); ++i) {
        size_t len = path.size();
        path += '[' + std::to_string(i) + ']';
        walk_unknown(*shape.element, v[i], path, out);
        path.resize(len);
      }
      return;
    case TypeShape::Kind::Map:
      if (!v.is_object()) return;
      for (auto it = v.begin(); it != v.end(); ++it) {
        size_t len = path.size();
        if (!path.empty()) path += '.';
        path += it.key();
        walk_unknown(*shape.element, it.value(), path, out);
        path.resize(len);
      }
      return;
  }
}

// Follows the JSON text with the schema, as Kubernetes' strict decoder does, so that duplicate
// keys (which a parsed json value has already lost) and document order are kept.
class StrictSax {
 public:
  explicit StrictSax(const TypeDef* root) {
    root_.kind = TypeShape::Kind::Named;
    root_.named = root;
    pending_ = &root_;
  }

  std::vector<std::string> errors;

  bool null() { return scalar(); }
  bool boolean(bool) { return scalar(); }
  bool number_integer(json::number_integer_t) { return scalar(); }
  bool number_unsigned(json::number_unsigned_t) { return scalar(); }
  bool number_float(json::number_float_t, const std::string&) { return scalar(); }
  bool string(std::string&) { return scalar(); }
  bool binary(json::binary_t&) { return scalar(); }

  bool start_object(std::size_t) {
    const TypeShape* s = begin_value();
    Frame f;
    f.path_len = path_.size();
    if (s && s->kind == TypeShape::Kind::Named && s->named->scalar.empty()) {
      f.kind = Frame::Struct;
      f.type = s->named;
    } else if (s && s->kind == TypeShape::Kind::Map) {
      f.kind = Frame::Map;
      f.element = s->element.get();
    } else {
      f.kind = Frame::Skip;
    }
    frames_.push_back(std::move(f));
    return true;
  }

  bool key(std::string& k) {
    Frame& f = frames_.back();
    if (f.kind == Frame::Skip) return true;
    path_.resize(f.path_len);
    pending_ = nullptr;
    if (f.kind == Frame::Map) {
      if (!f.seen.insert(k).second) report("duplicate field", k);
      append_key(k);
      pending_ = f.element;
      return true;
    }
    const FieldDef* field = f.type->json_field(k);
    if (!field) {
      report("unknown field", k);
      return true;
    }
    if (!f.seen.insert(field->name).second) report("duplicate field", field->name);
    append_key(field->name);
    pending_ = &field->shape;
    return true;
  }

  bool end_object() { return end_container(); }

  bool start_array(std::size_t) {
    const TypeShape* s = begin_value();
    Frame f;
    f.path_len = path_.size();
    if (s && s->kind == TypeShape::Kind::List) {
      f.kind = Frame::List;
      f.element = s->element.get();
    } else {
      f.kind = Frame::Skip;
    }
    frames_.push_back(std::move(f));
    return true;
  }

  bool end_array() { return end_container(); }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  struct Frame {
    enum Kind { Struct, Map, List, Skip } kind = Skip;
    const TypeDef* type = nullptr;
    const TypeShape* element = nullptr;
    std::set<std::string> seen;
    size_t path_len = 0;
    size_t index = 0;
  };

  // The shape the value about to start should have; nullptr when nothing is checked inside it.
  const TypeShape* begin_value() {
    if (frames_.empty()) return pending_;
    Frame& f = frames_.back();
    switch (f.kind) {
      case Frame::Skip:
        return nullptr;
      case Frame::List:
        path_.resize(f.path_len);
        path_.push_back("[");
        path_.push_back(std::to_string(f.index));
        path_.push_back("]");
        return f.element;
      default:
        return pending_;
    }
  }

  void end_value() {
    if (frames_.empty()) return;
    Frame& f = frames_.back();
    if (f.kind == Frame::List) ++f.index;
    if (f.kind != Frame::Skip) path_.resize(f.path_len);
    pending_ = nullptr;
  }

  bool scalar() {
    begin_value();
    end_value();
    return true;
  }

  bool end_container() {
    frames_.pop_back();
    end_value();
    return true;
  }

  void append_key(const std::string& k) {
    if (!path_.empty()) path_.push_back(".");
    path_.push_back(k);
  }

  void report(const char* what, const std::string& field) {
    std::string p;
    for (const auto& piece : path_) p += piece;
    if (!p.empty()) p += '.';
    p += field;
    std::string msg = std::string(what) + " " + json(p).dump();
    if (errors.size() >= 100 || seen_.count(msg)) return;
    seen_.insert(msg);
    errors.push_back(std::move(msg));
  }

  TypeShape root_;
  const TypeShape* pending_ = nullptr;
  std::vector<Frame> frames_;
  std::vector<std::string> path_;
  std::unordered_set<std::string> seen_;
};

}  // namespace

std::vector<std::string> Schema::unknown_fields(const GroupVersionKind& gvk, const json& obj) const {
  std::vector<std::string> out;
  const KindInfo* k = find_kind(gvk);
  if (!k) return out;
  std::string path;
  walk_struct(*k->type, obj, path, out);
  return out;
}

std::vector<std::string> Schema::strict_field_errors(const GroupVersionKind& gvk, std::string_view text) const {
  const KindInfo* k = find_kind(gvk);
  if (!k) return {};
  StrictSax sax(k->type);
  if (!json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, true, true)) return {};
  return std::move(sax.errors);
}

// ---------------------------------------------------------------------------------------------
// OpenAPI

namespace {

const char* kJsonMime = "application/json";
const char* kYamlMime = "application/yaml";
const char* kProtoMime = "application/vnd.kubernetes.protobuf";

json gvk_json(const std::string& g, const std::string& v, const std::string& k) {
  return json{{"group", g}, {"version", v}, {"kind", k}};
}

// "apps" -> "Apps", "coordination.k8s.io" -> "Coordination", "" -> "Core".
std::string group_camel(const std::string& group) {
  if (group.empty()) return "Core";
  std::string first = group.substr(0, group.find('.'));
  std::string out;
  bool up = true;
  for (char c : first) {
    if (c == '-') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  return out;
}

std::string version_camel(const std::string& v) {
  std::string out = v;
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string tag_of(const std::string& group, const std::string& version) {
  std::string g = group.empty() ? "core" : group.substr(0, group.find('.'));
  return g + "_" + version;
}

}  // namespace

namespace {

struct OpenApiWriter {
  const Schema& schema;
  bool v3;

  std::string ref(const TypeDef& t) const {
    return (v3 ? "#/components/schemas/" : "#/definitions/") + t.definition;
  }

  json shape_schema(const TypeShape& s, bool property) const {
    switch (s.kind) {
      case TypeShape::Kind::Primitive: {
        const std::string& p = s.primitive;
        if (p == "string") return {{"type", "string"}};
        if (p == "bool") return {{"type", "boolean"}};
        if (p == "bytes") return {{"type", "string"}, {"format", "byte"}};
        if (p == "double") return {{"type", "number"}, {"format", "double"}};
        if (p == "float") return {{"type", "number"}, {"format", "float"}};
        if (p == "int32" || p == "uint32") return {{"type", "integer"}, {"format", "int32"}};
        return {{"type", "integer"}, {"format", "int64"}};
      }
      case TypeShape::Kind::Named:
        if (v3 && property) return {{"allOf", json::array({json{{"$ref", ref(*s.named)}}})}};
        return {{"$ref", ref(*s.named)}};
      case TypeShape::Kind::List:
        return {{"type", "array"}, {"items", shape_schema(*s.element, false)}};
      case TypeShape::Kind::Map:
        return {{"type", "object"}, {"additionalProperties", shape_schema(*s.element, false)}};
    }
    return json::object();
  }

  json field_schema(const FieldDef& f) const {
    json p = shape_schema(f.shape, true);
    if (!f.description.empty()) p["description"] = f.description;
    if (!f.patch_strategy.empty()) p["x-kubernetes-patch-strategy"] = f.patch_strategy;
    if (!f.merge_key.empty()) p["x-kubernetes-patch-merge-key"] = f.merge_key;
    if (!f.list_type.empty()) p["x-kubernetes-list-type"] = f.list_type;
    if (!f.list_map_keys.empty()) p["x-kubernetes-list-map-keys"] = f.list_map_keys;
    if (!f.map_type.empty()) p["x-kubernetes-map-type"] = f.map_type;
    return p;
  }

  json gvks_of(const TypeDef& t) const {
    json out = json::array();
    if (t.id == "meta/v1.DeleteOptions") {
      for (const std::string& gv : schema.group_versions()) {
        auto slash = gv.find('/');
        std::string g = slash == std::string::npos ? "" : gv.substr(0, slash);
        std::string v = slash == std::string::npos ? gv : gv.substr(slash + 1);
        out.push_back(gvk_json(g, v, "DeleteOptions"));
      }
      return out;
    }
    for (const KindInfo& k : schema.kinds()) {
      if (k.type != &t) continue;
      if (k.group == "meta.k8s.io")
        out.push_back(gvk_json("", "v1", k.kind));
      else
        out.push_back(gvk_json(k.group, k.version, k.kind));
    }
    return out;
  }

  json type_schema(const TypeDef& t) const {
    json s;
    const std::string& sc = t.scalar;
    if (sc == "time" || sc == "microtime") {
      s = {{"type", "string"}, {"format", "date-time"}};
    } else if (sc == "duration") {
      s = {{"type", "string"}};
    } else if (sc == "quantity") {
      if (v3)
        s = {{"oneOf", json::array({json{{"type", "string"}}, json{{"type", "number"}}})}};
      else
        s = {{"type", "string"}};
    } else if (sc == "intstr") {
      if (v3)
        s = {{"format", "int-or-string"}, {"oneOf", json::array({json{{"type", "integer"}}, json{{"type", "string"}}})}};
      else
        s = {{"type", "string"}, {"format", "int-or-string"}};
    } else if (!sc.empty()) {
      s = {{"type", "object"}};
    } else {
      s["type"] = "object";
      json props = json::object();
      json required = json::array();
      for (const FieldDef* f : t.json_fields()) {
        props[f->name] = field_schema(*f);
        if (f->required) required.push_back(f->name);
      }
      if (!props.empty()) s["properties"] = std::move(props);
      if (!required.empty()) s["required"] = std::move(required);
      json gvks = gvks_of(t);
      if (!gvks.empty()) s["x-kubernetes-group-version-kind"] = std::move(gvks);
    }
    if (!t.map_type.empty()) s["x-kubernetes-map-type"] = t.map_type;
    if (!t.description.empty()) s["description"] = t.description;
    return s;
  }

  static void collect(const TypeDef& t, std::set<const TypeDef*>& out) {
    if (!out.insert(&t).second) return;
    for (const FieldDef* f : t.json_fields()) {
      const TypeShape* s = &f->shape;
      while (s->kind == TypeShape::Kind::List || s->kind == TypeShape::Kind::Map) s = s->element.get();
      if (s->kind == TypeShape::Kind::Named) collect(*s->named, out);
    }
  }

  json schemas_for(const std::set<const TypeDef*>& types) const {
    json out = json::object();
    for (const TypeDef* t : types) out[t->definition] = type_schema(*t);
    out["io.k8s.apimachinery.pkg.apis.meta.v1.Patch"] = {
        {"type", "object"}, {"description", "A patch body; its form is given by the request's Content-Type."}};
    return out;
  }

  // ---- operations

  json param(const std::string& name, const std::string& in, const std::string& type, const std::string& desc,
             bool required = false) const {
    json p = {{"name", name}, {"in", in}, {"description", desc}};
    if (required) p["required"] = true;
    if (v3) {
      p["schema"] = {{"type", type}, {"uniqueItems", true}};
    } else {
      p["type"] = type;
      p["uniqueItems"] = true;
    }
    return p;
  }

  json write_params(bool patch) const {
    json ps = json::array();
    ps.push_back(param("dryRun", "query", "string", "When present, the request is checked but not persisted (All)."));
    ps.push_back(param("fieldManager", "query", "string", "Name of the actor making the change."));
    ps.push_back(param("fieldValidation", "query", "string",
                       "How unknown and duplicate fields are treated: Ignore, Warn or Strict."));
    if (patch) ps.push_back(param("force", "query", "boolean", "Take ownership of conflicting fields (apply only)."));
    return ps;
  }

  json list_params() const {
    json ps = json::array();
    ps.push_back(param("allowWatchBookmarks", "query", "boolean", "Ask for BOOKMARK watch events."));
    ps.push_back(param("continue", "query", "string", "Continue token from a previous page."));
    ps.push_back(param("fieldSelector", "query", "string", "Select objects by field values."));
    ps.push_back(param("labelSelector", "query", "string", "Select objects by labels."));
    ps.push_back(param("limit", "query", "integer", "Maximum number of items to return."));
    ps.push_back(param("resourceVersion", "query", "string", "Revision to list or watch from."));
    ps.push_back(param("resourceVersionMatch", "query", "string", "How resourceVersion is applied."));
    ps.push_back(param("sendInitialEvents", "query", "boolean", "Start a watch with the current objects."));
    ps.push_back(param("timeoutSeconds", "query", "integer", "Time limit of a list or watch call."));
    ps.push_back(param("watch", "query", "boolean", "Stream changes instead of listing."));
    return ps;
  }

  json delete_params() const {
    json ps = json::array();
    ps.push_back(param("dryRun", "query", "string", "When present, the request is checked but not persisted (All)."));
    ps.push_back(param("gracePeriodSeconds", "query", "integer", "Seconds before the object is deleted."));
    ps.push_back(param("propagationPolicy", "query", "string", "Orphan, Background or Foreground."));
    return ps;
  }

  json body_of(const TypeDef& t) const {
    if (v3) return {{"content", {{"*/*", {{"schema", {{"$ref", ref(t)}}}}}}}, {"required", true}};
    return {{"name", "body"}, {"in", "body"}, {"required", true}, {"schema", {{"$ref", ref(t)}}}};
  }

  json patch_body() const {
    std::string patch_ref = (v3 ? "#/components/schemas/" : "#/definitions/") +
                            std::string("io.k8s.apimachinery.pkg.apis.meta.v1.Patch");
    if (!v3) return {{"name", "body"}, {"in", "body"}, {"required", true}, {"schema", {{"$ref", patch_ref}}}};
    json content = json::object();
    for (const char* m : {"application/apply-patch+yaml", "application/json-patch+json",
                          "application/merge-patch+json", "application/strategic-merge-patch+json"})
      content[m] = {{"schema", {{"$ref", patch_ref}}}};
    return {{"content", content}, {"required", true}};
  }

  json responses(const TypeDef& t, std::initializer_list<const char*> codes) const {
    json r = json::object();
    for (const char* c : codes) {
      if (v3) {
        json content = json::object();
        for (const char* m : {kJsonMime, kYamlMime, kProtoMime}) content[m] = {{"schema", {{"$ref", ref(t)}}}};
        r[c] = {{"description", std::string(c) == "201" ? "Created" : std::string(c) == "202" ? "Accepted" : "OK"},
                {"content", content}};
      } else {
        r[c] = {{"description", std::string(c) == "201" ? "Created" : std::string(c) == "202" ? "Accepted" : "OK"},
                {"schema", {{"$ref", ref(t)}}}};
      }
    }
    r["401"] = {{"description", "Unauthorized"}};
    return r;
  }

  json op(const std::string& id, const std::string& action, const std::string& tag, const json& gvk,
          json params, const std::string& desc) const {
    json o = {{"operationId", id},
              {"tags", json::array({tag})},
              {"description", desc},
              {"x-kubernetes-action", action},
              {"x-kubernetes-group-version-kind", gvk}};
    if (!params.empty()) o["parameters"] = std::move(params);
    if (!v3) {
      o["consumes"] = json::array({"*/*"});
      o["produces"] = json::array({kJsonMime, kYamlMime, kProtoMime});
      o["schemes"] = json::array({"https"});
    }
    return o;
  }

  // Adds a request body: v3 as requestBody, v2 as a body parameter.
  void add_body(json& o, json body) const {
    if (v3) {
      o["requestBody"] = std::move(body);
    } else {
      if (!o.contains("parameters")) o["parameters"] = json::array();
      o["parameters"].insert(o["parameters"].begin(), std::move(body));
    }
  }

  void add_paths(const KindInfo& k, json& paths) const {
    const std::string& g = k.group;
    const std::string& v = k.version;
    std::string base = g.empty() ? "/api/" + v : "/apis/" + g + "/" + v;
    std::string gvcamel = group_camel(g) + version_camel(v);
    std::string ns_word = k.namespaced ? "Namespaced" : "";
    std::string coll = base + (k.namespaced ? "/namespaces/{namespace}/" : "/") + k.plural;
    std::string item = coll + "/{name}";
    std::string tag = tag_of(g, v);
    json gvk = gvk_json(g, v, k.kind);
    const TypeDef& type = *k.type;
    const TypeDef* list = k.list_kind.empty() ? nullptr : schema.find_type(split_id(type.id).first + "." + k.list_kind);
    const TypeDef* status = schema.find_type("meta/v1.Status");
    const TypeDef* delete_options = schema.find_type("meta/v1.DeleteOptions");
    auto has = [&](const char* verb) { return std::find(k.verbs.begin(), k.verbs.end(), verb) != k.verbs.end(); };

    json ns_param = param("namespace", "path", "string", "object name and auth scope, such as for teams and projects", true);
    json name_param = param("name", "path", "string", "name of the " + k.kind, true);
    json pretty = param("pretty", "query", "string", "If 'true', the output is pretty printed.");

    json c = json::object();
    if (has("list") && list) {
      json o = op("list" + gvcamel + ns_word + k.kind, "list", tag, gvk, list_params(),
                  "list or watch objects of kind " + k.kind);
      o["responses"] = responses(*list, {"200"});
      c["get"] = o;
    }
    if (has("create")) {
      json o = op("create" + gvcamel + ns_word + k.kind, "post", tag, gvk, write_params(false),
                  "create a " + k.kind);
      add_body(o, body_of(type));
      o["responses"] = responses(type, {"200", "201", "202"});
      c["post"] = o;
    }
    if (has("deletecollection")) {
      json ps = delete_params();
      for (auto& p : list_params()) ps.push_back(p);
      json o = op("deletecollection" + gvcamel + ns_word + k.kind, "deletecollection", tag, gvk, ps,
                  "delete collection of " + k.kind);
      if (delete_options) add_body(o, v3 ? json{{"content", {{"*/*", {{"schema", {{"$ref", ref(*delete_options)}}}}}}}}
                                         : json{{"name", "body"}, {"in", "body"}, {"schema", {{"$ref", ref(*delete_options)}}}});
      if (status) o["responses"] = responses(*status, {"200"});
      c["delete"] = o;
    }
    if (!c.empty()) {
      json ps = json::array();
      if (k.namespaced) ps.push_back(ns_param);
      ps.push_back(pretty);
      c["parameters"] = ps;
      paths[coll] = c;
    }
    if (k.namespaced && has("list") && list) {
      json o = op("list" + gvcamel + k.kind + "ForAllNamespaces", "list", tag, gvk, list_params(),
                  "list or watch objects of kind " + k.kind);
      o["responses"] = responses(*list, {"200"});
      paths[base + "/" + k.plural] = {{"get", o}, {"parameters", json::array({pretty})}};
    }

    json it = json::object();
    if (has("get")) {
      json o = op("read" + gvcamel + ns_word + k.kind, "get", tag, gvk, json::array(),
                  "read the specified " + k.kind);
      o["responses"] = responses(type, {"200"});
      it["get"] = o;
    }
    if (has("update")) {
      json o = op("replace" + gvcamel + ns_word + k.kind, "put", tag, gvk, write_params(false),
                  "replace the specified " + k.kind);
      add_body(o, body_of(type));
      o["responses"] = responses(type, {"200", "201"});
      it["put"] = o;
    }
    if (has("patch")) {
      json o = op("patch" + gvcamel + ns_word + k.kind, "patch", tag, gvk, write_params(true),
                  "partially update the specified " + k.kind);
      add_body(o, patch_body());
      o["responses"] = responses(type, {"200", "201"});
      it["patch"] = o;
    }
    if (has("delete")) {
      json o = op("delete" + gvcamel + ns_word + k.kind, "delete", tag, gvk, delete_params(),
                  "delete a " + k.kind);
      if (delete_options) add_body(o, v3 ? json{{"content", {{"*/*", {{"schema", {{"$ref", ref(*delete_options)}}}}}}}}
                                         : json{{"name", "body"}, {"in", "body"}, {"schema", {{"$ref", ref(*delete_options)}}}});
      if (status) o["responses"] = responses(*status, {"200", "202"});
      it["delete"] = o;
    }
    json item_params = json::array({name_param});
    if (k.namespaced) item_params.push_back(ns_param);
    item_params.push_back(pretty);
    if (!it.empty()) {
      it["parameters"] = item_params;
      paths[item] = it;
    }

    for (const auto& [sub, stype] : k.subresources) {
      const KindInfo* sk = nullptr;
      for (const KindInfo& cand : schema.kinds())
        if (cand.type == stype) {
          sk = &cand;
          break;
        }
      json sgvk = stype == &type || !sk ? gvk : gvk_json(sk->group, sk->version, sk->kind);
      std::string suffix = version_camel(sub);
      if (sub == "ephemeralcontainers") suffix = "EphemeralContainers";
      std::string nm = gvcamel + ns_word + k.kind + suffix;
      json s = json::object();
      if (sub == "binding" || sub == "eviction") {
        json o = op("create" + nm, "post", tag, sgvk, write_params(false), "create " + sub + " of a " + k.kind);
        add_body(o, body_of(*stype));
        o["responses"] = responses(*stype, {"200", "201", "202"});
        s["post"] = o;
      } else if (sub == "finalize") {
        json o = op("replace" + nm, "put", tag, sgvk, write_params(false), "replace finalize of the " + k.kind);
        add_body(o, body_of(*stype));
        o["responses"] = responses(*stype, {"200", "201"});
        s["put"] = o;
      } else {
        json r = op("read" + nm, "get", tag, sgvk, json::array(), "read " + sub + " of the specified " + k.kind);
        r["responses"] = responses(*stype, {"200"});
        s["get"] = r;
        json u = op("replace" + nm, "put", tag, sgvk, write_params(false), "replace " + sub + " of the specified " + k.kind);
        add_body(u, body_of(*stype));
        u["responses"] = responses(*stype, {"200", "201"});
        s["put"] = u;
        json p = op("patch" + nm, "patch", tag, sgvk, write_params(true),
                    "partially update " + sub + " of the specified " + k.kind);
        add_body(p, patch_body());
        p["responses"] = responses(*stype, {"200", "201"});
        s["patch"] = p;
      }
      s["parameters"] = item_params;
      paths[item + "/" + sub] = s;
    }
  }

  std::set<const TypeDef*> types_of(const std::vector<const KindInfo*>& kinds) const {
    std::set<const TypeDef*> types;
    for (const KindInfo* k : kinds) {
      collect(*k->type, types);
      if (!k->list_kind.empty())
        if (const TypeDef* l = schema.find_type(split_id(k->type->id).first + "." + k->list_kind)) collect(*l, types);
      for (const auto& [_, t] : k->subresources) collect(*t, types);
    }
    for (const char* id : {"meta/v1.Status", "meta/v1.DeleteOptions"})
      if (const TypeDef* t = schema.find_type(id)) collect(*t, types);
    return types;
  }
};

std::vector<const KindInfo*> resources_of(const Schema& s, std::string_view group, std::string_view version) {
  std::vector<const KindInfo*> out;
  for (const KindInfo& k : s.kinds())
    if (!k.plural.empty() && k.group == group && k.version == version) out.push_back(&k);
  return out;
}

json security_v3() { return {{"BearerToken", {{"type", "apiKey"}, {"name", "authorization"}, {"in", "header"}}}}; }

}  // namespace

json Schema::openapi_v3_group_version(std::string_view group, std::string_view version) const {
  std::string key = std::string(group) + "/" + std::string(version);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = v3_cache_.find(key);
    if (it != v3_cache_.end()) return it->second;
  }
  json doc = build_v3(group, version);
  std::lock_guard<std::mutex> lock(cache_mu_);
  return v3_cache_.emplace(key, std::move(doc)).first->second;
}

json Schema::build_v3(std::string_view group, std::string_view version) const {
  auto kinds = resources_of(*this, group, version);
  if (kinds.empty()) return nullptr;
  OpenApiWriter w{*this, true};
  json paths = json::object();
  for (const KindInfo* k : kinds) w.add_paths(*k, paths);
  return {{"openapi", "3.0.0"},
          {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
          {"paths", std::move(paths)},
          {"components", {{"schemas", w.schemas_for(w.types_of(kinds))}, {"securitySchemes", security_v3()}}},
          {"security", json::array({json{{"BearerToken", json::array()}}})}};
}

std::string Schema::document_hash(const json& doc) {
  // Two FNV-1a passes with different offsets: a stable content tag, not a security measure.
  std::string text = doc.dump();
  uint64_t a = 1469598103934665603ULL, b = 0x84222325cbf29ce4ULL;
  for (unsigned char c : text) {
    a = (a ^ c) * 1099511628211ULL;
    b = (b ^ c) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
  }
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llX%016llX", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

json Schema::openapi_v3_root(const std::function<std::string(const std::string& path)>& hash) const {
  json paths = json::object();
  for (const std::string& gv : group_versions()) {
    auto slash = gv.find('/');
    std::string g = slash == std::string::npos ? "" : gv.substr(0, slash);
    std::string v = slash == std::string::npos ? gv : gv.substr(slash + 1);
    std::string path = g.empty() ? "api/" + v : "apis/" + gv;
    std::string h = hash ? hash(path) : document_hash(openapi_v3_group_version(g, v));
    paths[path] = {{"serverRelativeURL", "/openapi/v3/" + path + "?hash=" + h}};
  }
  return {{"paths", std::move(paths)}};
}

json Schema::openapi_v2() const {
  OpenApiWriter w{*this, false};
  json paths = json::object();
  std::vector<const KindInfo*> all;
  for (const KindInfo& k : kinds_)
    if (!k.plural.empty()) all.push_back(&k);
  for (const KindInfo* k : all) w.add_paths(*k, paths);
  json defs = w.schemas_for(w.types_of(all));
  return {{"swagger", "2.0"},
          {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
          {"paths", std::move(paths)},
          {"definitions", std::move(defs)},
          {"securityDefinitions", security_v3()},
          {"security", json::array({json{{"BearerToken", json::array()}}})}};
}

SchemaPatchMeta patch_meta(const GroupVersionKind& gvk, const std::string& path) {
  return Schema::get().patch_meta(gvk, path);
}

PatchMetaLookup patch_meta_lookup(const GroupVersionKind& gvk) {
  return [gvk](const std::string& path) { return Schema::get().patch_meta(gvk, path); };
}

std::vector<std::string> unknown_fields(const GroupVersionKind& gvk, const json& obj) {
  return Schema::get().unknown_fields(gvk, obj);
}

json openapi_v3_root(const std::function<std::string(const std::string& path)>& hash) {
  return Schema::get().openapi_v3_root(hash);
}

json openapi_v3_group_version(const std::string& group, const std::string& version) {
  return Schema::get().openapi_v3_group_version(group, version);
}

json openapi_v2() { return Schema::get().openapi_v2(); }

}  // namespace berth::api
