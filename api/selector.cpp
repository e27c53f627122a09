#include "api/selector.h"

#include <algorithm>
#include <climits>
#include <set>

#include "api/validation.h"

namespace berth::api {

using nlohmann::json;

namespace {

// strconv.ParseInt(s, 10, 64)
std::optional<int64_t> parse_int10(std::string_view s) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    neg = s[i] == '-';
    ++i;
  }
  if (i == s.size()) return std::nullopt;
  unsigned long long v = 0;
  const unsigned long long limit = neg ? 9223372036854775808ULL : 9223372036854775807ULL;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c < '0' || c > '9') return std::nullopt;
    unsigned d = static_cast<unsigned>(c - '0');
    if (v > (limit - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  if (neg) return v == 9223372036854775808ULL ? INT64_MIN : -static_cast<int64_t>(v);
  return static_cast<int64_t>(v);
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

// validateLabelKey: one Invalid error whose detail joins the problems with "; ".
std::optional<Cause> validate_label_key(const std::string& key, const std::string& path) {
  auto errs = is_qualified_name(key);
  if (errs.empty()) return std::nullopt;
  return field_invalid(path, key, join(errs, "; "));
}

// Which value a labels object holds for key; non-string values compare by their JSON text.
std::optional<std::string> label_value(const json& labels, const std::string& key) {
  if (!labels.is_object()) return std::nullopt;
  auto it = labels.find(key);
  if (it == labels.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

Status bad_request(std::string msg) { return Status(Reason::BadRequest, std::move(msg)); }

// NewRequirement with the path upstream uses (nil path, so children print as "key", "values[0][k]").
Result<LabelRequirement> new_requirement(std::string key, LabelOp op, std::vector<std::string> vals,
                                         bool nil_values) {
  std::vector<Cause> errs;
  if (auto c = validate_label_key(key, "key")) errs.push_back(std::move(*c));
  switch (op) {
    case LabelOp::In:
    case LabelOp::NotIn:
      if (vals.empty())
        errs.push_back(field_invalid_rendered("values", go_string_slice(vals, nil_values),
                                              "for 'in', 'notin' operators, values set can't be empty"));
      break;
    case LabelOp::Equals:
    case LabelOp::DoubleEquals:
    case LabelOp::NotEquals:
      if (vals.size() != 1)
        errs.push_back(field_invalid_rendered("values", go_string_slice(vals, nil_values),
                                              "exact-match compatibility requires one single value"));
      break;
    case LabelOp::Exists:
    case LabelOp::DoesNotExist:
      if (!vals.empty())
        errs.push_back(field_invalid_rendered("values", go_string_slice(vals, nil_values),
                                              "values set must be empty for exists and does not exist"));
      break;
    case LabelOp::GreaterThan:
    case LabelOp::LessThan:
      if (vals.size() != 1)
        errs.push_back(field_invalid_rendered("values", go_string_slice(vals, nil_values),
                                              "for 'Gt', 'Lt' operators, exactly one value is required"));
      for (size_t i = 0; i < vals.size(); ++i)
        if (!parse_int10(vals[i]))
          errs.push_back(field_invalid("values[" + std::to_string(i) + "]", vals[i],
                                       "for 'Gt', 'Lt' operators, the value must be an integer"));
      break;
  }
  for (size_t i = 0; i < vals.size(); ++i) {
    auto msgs = is_valid_label_value(vals[i]);
    if (!msgs.empty())
      errs.push_back(field_invalid("values[" + std::to_string(i) + "][" + key + "]", vals[i], join(msgs, "; ")));
  }
  if (!errs.empty()) return bad_request(aggregate_message(errs));
  LabelRequirement r;
  r.key = std::move(key);
  r.op = op;
  r.values = std::move(vals);
  return r;
}

// ---- the label selector lexer and parser (labels/selector.go), byte for byte ----

enum class Tok {
  Error = 0,
  EndOfString,
  ClosedPar,
  Comma,
  DoesNotExist,
  DoubleEquals,
  Equals,
  GreaterThan,
  Identifier,
  In,
  LessThan,
  NotEquals,
  NotIn,
  OpenPar,
};

std::optional<Tok> string_to_token(std::string_view s) {
  if (s == ")") return Tok::ClosedPar;
  if (s == ",") return Tok::Comma;
  if (s == "!") return Tok::DoesNotExist;
  if (s == "==") return Tok::DoubleEquals;
  if (s == "=") return Tok::Equals;
  if (s == ">") return Tok::GreaterThan;
  if (s == "in") return Tok::In;
  if (s == "<") return Tok::LessThan;
  if (s == "!=") return Tok::NotEquals;
  if (s == "notin") return Tok::NotIn;
  if (s == "(") return Tok::OpenPar;
  return std::nullopt;
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_special(char c) {
  switch (c) {
    case '=': case '!': case '(': case ')': case ',': case '>': case '<': return true;
    default: return false;
  }
}

struct Item {
  Tok tok;
  std::string lit;
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Item lex() {
    char ch = skip_ws(read());
    if (ch == 0) return {Tok::EndOfString, ""};
    unread();
    if (is_special(ch)) return scan_special();
    return scan_id_or_keyword();
  }

 private:
  char read() {
    char b = 0;
    if (pos_ < s_.size()) {
      b = s_[pos_];
      ++pos_;
    }
    return b;
  }
  void unread() { --pos_; }
  char skip_ws(char ch) {
    while (is_ws(ch)) ch = read();
    return ch;
  }
  Item scan_id_or_keyword() {
    std::string buf;
    while (true) {
      char ch = read();
      if (ch == 0) break;
      if (is_special(ch) || is_ws(ch)) {
        unread();
        break;
      }
      buf += ch;
    }
    if (auto t = string_to_token(buf)) return {*t, buf};
    return {Tok::Identifier, buf};
  }
  Item scan_special() {
    Item last{Tok::Error, ""};
    std::string buf;
    while (true) {
      char ch = read();
      if (ch == 0) break;
      if (is_special(ch)) {
        buf += ch;
        if (auto t = string_to_token(buf)) {
          last = {*t, buf};
        } else if (last.tok != Tok::Error) {
          unread();
          break;
        }
      } else {
        unread();
        break;
      }
    }
    if (last.tok == Tok::Error) return {Tok::Error, "error expected: keyword found '" + buf + "'"};
    return last;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

enum class Ctx { KeyAndOperator, Values };

class Parser {
 public:
  explicit Parser(std::string_view s) {
    Lexer l(s);
    while (true) {
      Item it = l.lex();
      bool end = it.tok == Tok::EndOfString;
      items_.push_back(std::move(it));
      if (end) break;
    }
  }

  // Returns the requirements or sets err.
  std::vector<LabelRequirement> parse(std::string& err) {
    std::vector<LabelRequirement> reqs;
    while (true) {
      auto [tok, lit] = lookahead(Ctx::Values);
      switch (tok) {
        case Tok::Identifier:
        case Tok::DoesNotExist: {
          std::string rerr;
          auto r = parse_requirement(rerr);
          if (!rerr.empty()) {
            err = "unable to parse requirement: " + rerr;
            return {};
          }
          reqs.push_back(std::move(*r));
          auto [t, l] = consume(Ctx::Values);
          if (t == Tok::EndOfString) return reqs;
          if (t == Tok::Comma) {
            auto [t2, l2] = lookahead(Ctx::Values);
            if (t2 != Tok::Identifier && t2 != Tok::DoesNotExist) {
              err = "found '" + l2 + "', expected: identifier after ','";
              return {};
            }
            break;
          }
          err = "found '" + l + "', expected: ',' or 'end of string'";
          return {};
        }
        case Tok::EndOfString: return reqs;
        default:
          err = "found '" + lit + "', expected: !, identifier, or 'end of string'";
          return {};
      }
    }
  }

 private:
  std::pair<Tok, std::string> lookahead(Ctx ctx) const {
    const Item& it = items_[std::min(pos_, items_.size() - 1)];  // the last item is always EndOfString
    Tok t = it.tok;
    if (ctx == Ctx::Values && (t == Tok::In || t == Tok::NotIn)) t = Tok::Identifier;
    return {t, it.lit};
  }
  std::pair<Tok, std::string> consume(Ctx ctx) {
    auto r = lookahead(ctx);
    ++pos_;
    return r;
  }

  std::optional<LabelRequirement> parse_requirement(std::string& err) {
    std::string key;
    std::optional<LabelOp> op;
    if (!parse_key_and_infer_operator(key, op, err)) return std::nullopt;
    if (op && (*op == LabelOp::Exists || *op == LabelOp::DoesNotExist)) {
      auto r = new_requirement(key, *op, {}, false);
      if (!r) {
        err = r.status().message();
        return std::nullopt;
      }
      return std::move(r).value();
    }
    LabelOp bin;
    if (!parse_operator(bin, err)) return std::nullopt;
    std::set<std::string> values;
    bool ok = false;
    switch (bin) {
      case LabelOp::In:
      case LabelOp::NotIn: ok = parse_values(values, err); break;
      default: ok = parse_exact_value(values, err); break;
    }
    if (!ok) return std::nullopt;
    auto r = new_requirement(key, bin, std::vector<std::string>(values.begin(), values.end()), false);
    if (!r) {
      err = r.status().message();
      return std::nullopt;
    }
    return std::move(r).value();
  }

  bool parse_key_and_infer_operator(std::string& key, std::optional<LabelOp>& op, std::string& err) {
    auto [tok, lit] = consume(Ctx::Values);
    if (tok == Tok::DoesNotExist) {
      op = LabelOp::DoesNotExist;
      std::tie(tok, lit) = consume(Ctx::Values);
    }
    if (tok != Tok::Identifier) {
      err = "found '" + lit + "', expected: identifier";
      return false;
    }
    if (auto c = validate_label_key(lit, "<nil>")) {
      err = cause_string(*c);
      return false;
    }
    auto [t, l] = lookahead(Ctx::Values);
    if (t == Tok::EndOfString || t == Tok::Comma) {
      if (op != LabelOp::DoesNotExist) op = LabelOp::Exists;
    }
    key = lit;
    return true;
  }

  bool parse_operator(LabelOp& op, std::string& err) {
    auto [tok, lit] = consume(Ctx::KeyAndOperator);
    switch (tok) {
      case Tok::In: op = LabelOp::In; return true;
      case Tok::Equals: op = LabelOp::Equals; return true;
      case Tok::DoubleEquals: op = LabelOp::DoubleEquals; return true;
      case Tok::GreaterThan: op = LabelOp::GreaterThan; return true;
      case Tok::LessThan: op = LabelOp::LessThan; return true;
      case Tok::NotIn: op = LabelOp::NotIn; return true;
      case Tok::NotEquals: op = LabelOp::NotEquals; return true;
      default:
        err = "found '" + lit + "', expected: in, notin, =, ==, !=, gt, lt";
        return false;
    }
  }

  bool parse_values(std::set<std::string>& out, std::string& err) {
    auto [tok, lit] = consume(Ctx::Values);
    if (tok != Tok::OpenPar) {
      err = "found '" + lit + "' expected: '('";
      return false;
    }
    std::tie(tok, lit) = lookahead(Ctx::Values);
    switch (tok) {
      case Tok::Identifier:
      case Tok::Comma: {
        if (!parse_identifiers_list(out, err)) return false;
        auto [t, l] = consume(Ctx::Values);
        if (t != Tok::ClosedPar) {
          err = "found '" + lit + "', expected: ')'";  // upstream reports the token seen before the list
          return false;
        }
        return true;
      }
      case Tok::ClosedPar:
        consume(Ctx::Values);
        out.insert("");
        return true;
      default:
        err = "found '" + lit + "', expected: ',', ')' or identifier";
        return false;
    }
  }

  bool parse_identifiers_list(std::set<std::string>& s, std::string& err) {
    while (true) {
      auto [tok, lit] = consume(Ctx::Values);
      switch (tok) {
        case Tok::Identifier: {
          s.insert(lit);
          auto [t2, l2] = lookahead(Ctx::Values);
          if (t2 == Tok::Comma) continue;
          if (t2 == Tok::ClosedPar) return true;
          err = "found '" + l2 + "', expected: ',' or ')'";
          return false;
        }
        case Tok::Comma: {
          if (s.empty()) s.insert("");
          auto [t2, l2] = lookahead(Ctx::Values);
          if (t2 == Tok::ClosedPar) {
            s.insert("");
            return true;
          }
          if (t2 == Tok::Comma) {
            consume(Ctx::Values);
            s.insert("");
          }
          break;
        }
        default:
          err = "found '" + lit + "', expected: ',', or identifier";
          return false;
      }
    }
  }

  bool parse_exact_value(std::set<std::string>& s, std::string& err) {
    auto [tok, lit] = lookahead(Ctx::Values);
    if (tok == Tok::EndOfString || tok == Tok::Comma) {
      s.insert("");
      return true;
    }
    std::tie(tok, lit) = consume(Ctx::Values);
    if (tok == Tok::Identifier) {
      s.insert(lit);
      return true;
    }
    err = "found '" + lit + "', expected: identifier";
    return false;
  }

  std::vector<Item> items_;
  size_t pos_ = 0;
};

void sort_by_key(std::vector<LabelRequirement>& reqs) {
  std::stable_sort(reqs.begin(), reqs.end(),
                   [](const LabelRequirement& a, const LabelRequirement& b) { return a.key < b.key; });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// LabelRequirement

Result<LabelRequirement> LabelRequirement::make(std::string key, LabelOp op, std::vector<std::string> values) {
  return new_requirement(std::move(key), op, std::move(values), false);
}

bool LabelRequirement::matches(const json& labels) const {
  auto v = label_value(labels, key);
  auto has_value = [&](const std::string& x) { return std::find(values.begin(), values.end(), x) != values.end(); };
  switch (op) {
    case LabelOp::In:
    case LabelOp::Equals:
    case LabelOp::DoubleEquals: return v && has_value(*v);
    case LabelOp::NotIn:
    case LabelOp::NotEquals: return !v || !has_value(*v);
    case LabelOp::Exists: return v.has_value();
    case LabelOp::DoesNotExist: return !v.has_value();
    case LabelOp::GreaterThan:
    case LabelOp::LessThan: {
      if (!v) return false;
      auto lv = parse_int10(*v);
      if (!lv || values.size() != 1) return false;
      auto rv = parse_int10(values[0]);
      if (!rv) return false;
      return op == LabelOp::GreaterThan ? *lv > *rv : *lv < *rv;
    }
  }
  return false;
}

std::string LabelRequirement::to_string() const {
  std::string out;
  if (op == LabelOp::DoesNotExist) out += "!";
  out += key;
  switch (op) {
    case LabelOp::Equals: out += "="; break;
    case LabelOp::DoubleEquals: out += "=="; break;
    case LabelOp::NotEquals: out += "!="; break;
    case LabelOp::In: out += " in "; break;
    case LabelOp::NotIn: out += " notin "; break;
    case LabelOp::GreaterThan: out += ">"; break;
    case LabelOp::LessThan: out += "<"; break;
    case LabelOp::Exists:
    case LabelOp::DoesNotExist: return out;
  }
  bool set = op == LabelOp::In || op == LabelOp::NotIn;
  if (set) out += "(";
  if (values.size() == 1) {
    out += values[0];
  } else {
    std::vector<std::string> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    out += join(sorted, ",");
  }
  if (set) out += ")";
  return out;
}

// ---------------------------------------------------------------------------------------------
// LabelSelector

LabelSelector LabelSelector::nothing() {
  LabelSelector s;
  s.nothing_ = true;
  return s;
}

Result<LabelSelector> LabelSelector::parse(std::string_view selector) {
  Parser p(selector);
  std::string err;
  auto reqs = p.parse(err);
  if (!err.empty()) return bad_request(std::move(err));
  sort_by_key(reqs);
  LabelSelector s;
  s.reqs_ = std::move(reqs);
  return s;
}

Result<LabelSelector> LabelSelector::from_json(const json& ls) {
  if (ls.is_null()) return nothing();
  if (!ls.is_object()) return bad_request("label selector must be an object, got " + ls.dump());
  static const json kEmptyObject = json::object();
  static const json kEmptyArray = json::array();
  auto ml_it = ls.find("matchLabels");
  auto me_it = ls.find("matchExpressions");
  const json& ml = (ml_it == ls.end() || ml_it->is_null()) ? kEmptyObject : *ml_it;
  const json& me = (me_it == ls.end() || me_it->is_null()) ? kEmptyArray : *me_it;
  if (!ml.is_object()) return bad_request("matchLabels must be an object of strings");
  if (!me.is_array()) return bad_request("matchExpressions must be a list");
  if (ml.empty() && me.empty()) return everything();
  LabelSelector s;
  for (const auto& [k, v] : ml.items()) {
    if (!v.is_string()) return bad_request("matchLabels values must be strings");
    auto r = new_requirement(k, LabelOp::Equals, {v.get<std::string>()}, false);
    if (!r) return std::move(r).take_status();
    s.reqs_.push_back(std::move(r).value());
  }
  for (const auto& expr : me) {
    if (!expr.is_object()) return bad_request("matchExpressions entries must be objects");
    std::string key = expr.contains("key") && expr["key"].is_string() ? expr["key"].get<std::string>() : "";
    std::string op = expr.contains("operator") && expr["operator"].is_string() ? expr["operator"].get<std::string>() : "";
    LabelOp lop;
    if (op == "In") lop = LabelOp::In;
    else if (op == "NotIn") lop = LabelOp::NotIn;
    else if (op == "Exists") lop = LabelOp::Exists;
    else if (op == "DoesNotExist") lop = LabelOp::DoesNotExist;
    else return bad_request(go_quote(op) + " is not a valid label selector operator");
    std::vector<std::string> vals;
    auto vit = expr.find("values");
    if (vit != expr.end() && !vit->is_null()) {
      if (!vit->is_array()) return bad_request("matchExpressions values must be a list of strings");
      for (const auto& v : *vit) {
        if (!v.is_string()) return bad_request("matchExpressions values must be a list of strings");
        vals.push_back(v.get<std::string>());
      }
    }
    auto r = new_requirement(key, lop, std::move(vals), true);
    if (!r) return std::move(r).take_status();
    s.reqs_.push_back(std::move(r).value());
  }
  sort_by_key(s.reqs_);
  return s;
}

LabelSelector LabelSelector::from_set(const json& set) {
  LabelSelector s;
  if (!set.is_object()) return s;
  for (const auto& [k, v] : set.items()) {
    if (!v.is_string()) continue;
    s.reqs_.push_back(LabelRequirement{k, LabelOp::Equals, {v.get<std::string>()}});
  }
  sort_by_key(s.reqs_);
  return s;
}

bool LabelSelector::matches(const json& labels) const {
  if (nothing_) return false;
  for (const auto& r : reqs_)
    if (!r.matches(labels)) return false;
  return true;
}

std::string LabelSelector::to_string() const {
  if (nothing_) return "";
  std::string out;
  for (size_t i = 0; i < reqs_.size(); ++i) {
    if (i) out += ",";
    out += reqs_[i].to_string();
  }
  return out;
}

std::optional<std::string> LabelSelector::requires_exact_match(std::string_view key) const {
  if (nothing_) return std::nullopt;
  for (const auto& r : reqs_) {
    if (r.key != key) continue;
    if ((r.op == LabelOp::Equals || r.op == LabelOp::DoubleEquals || r.op == LabelOp::In) && r.values.size() == 1)
      return r.values[0];
    return std::nullopt;
  }
  return std::nullopt;
}

void LabelSelector::add(LabelRequirement r) {
  if (nothing_) return;
  reqs_.push_back(std::move(r));
  sort_by_key(reqs_);
}

void validate_label_selector(const json& ls, const std::string& path, std::vector<Cause>& out) {
  if (ls.is_null()) return;
  if (!ls.is_object()) {
    out.push_back(field_type_invalid(path, ls, "must be a label selector object"));
    return;
  }
  if (auto it = ls.find("matchLabels"); it != ls.end()) validate_labels(*it, path + ".matchLabels", out);
  auto me = ls.find("matchExpressions");
  if (me == ls.end() || me->is_null()) return;
  if (!me->is_array()) {
    out.push_back(field_type_invalid(path + ".matchExpressions", *me, "must be a list"));
    return;
  }
  for (size_t i = 0; i < me->size(); ++i) {
    const json& expr = (*me)[i];
    std::string p = path + ".matchExpressions[" + std::to_string(i) + "]";
    if (!expr.is_object()) {
      out.push_back(field_type_invalid(p, expr, "must be a label selector requirement"));
      continue;
    }
    std::string op = expr.contains("operator") && expr["operator"].is_string() ? expr["operator"].get<std::string>() : "";
    std::string key = expr.contains("key") && expr["key"].is_string() ? expr["key"].get<std::string>() : "";
    static const json kEmpty = json::array();
    auto vit = expr.find("values");
    const json& values = (vit == expr.end() || !vit->is_array()) ? kEmpty : *vit;
    if (op == "In" || op == "NotIn") {
      if (values.empty())
        out.push_back(field_required(p + ".values", "must be specified when `operator` is 'In' or 'NotIn'"));
    } else if (op == "Exists" || op == "DoesNotExist") {
      if (!values.empty())
        out.push_back(field_forbidden(p + ".values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
    } else {
      out.push_back(field_invalid(p + ".operator", op, "not a valid selector operator"));
    }
    for (auto& msg : is_qualified_name(key)) out.push_back(field_invalid(p + ".key", key, msg));
    for (size_t j = 0; j < values.size(); ++j) {
      std::string vp = p + ".values[" + std::to_string(j) + "]";
      if (!values[j].is_string()) {
        out.push_back(field_type_invalid(vp, values[j], "must be a string"));
        continue;
      }
      for (auto& msg : is_valid_label_value(values[j].get_ref<const std::string&>()))
        out.push_back(field_invalid(vp, values[j], msg));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Field selectors

std::string escape_field_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == ',' || c == '=') out += '\\';
    out += c;
  }
  return out;
}

Result<std::string> unescape_field_value(std::string_view s) {
  if (s.find_first_of("\\,=") == std::string_view::npos) return std::string(s);
  std::string out;
  bool in_slash = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_slash) {
      if (c == '\\' || c == ',' || c == '=') {
        out += c;
      } else {
        // The escape sequence is the backslash and the whole (UTF-8) rune after it.
        size_t w = 1;
        auto b = static_cast<unsigned char>(c);
        if (b >= 0xF0) w = 4;
        else if (b >= 0xE0) w = 3;
        else if (b >= 0xC0) w = 2;
        return bad_request("invalid field selector: invalid escape sequence: \\" + std::string(s.substr(i, w)));
      }
      in_slash = false;
      continue;
    }
    if (c == '\\') {
      in_slash = true;
    } else if (c == ',' || c == '=') {
      // UnescapedRune prints the rune with %v, i.e. its code point number.
      return bad_request("invalid field selector: unescaped character in value: " + std::to_string(static_cast<int>(c)));
    } else {
      out += c;
    }
  }
  if (in_slash) return bad_request("invalid field selector: invalid escape sequence: \\");
  return out;
}

Result<FieldSelector> FieldSelector::parse(std::string_view selector) {
  std::vector<std::string> parts;
  if (!selector.empty()) {
    size_t start = 0;
    bool in_slash = false;
    for (size_t i = 0; i < selector.size(); ++i) {
      char c = selector[i];
      if (in_slash) {
        in_slash = false;
      } else if (c == '\\') {
        in_slash = true;
      } else if (c == ',') {
        parts.emplace_back(selector.substr(start, i - start));
        start = i + 1;
      }
    }
    parts.emplace_back(selector.substr(start));
  }
  std::sort(parts.begin(), parts.end());
  FieldSelector fs;
  for (const auto& part : parts) {
    if (part.empty()) continue;
    size_t at = std::string::npos;
    std::string op;
    for (size_t i = 0; i < part.size() && at == std::string::npos; ++i) {
      for (const char* candidate : {"!=", "==", "="}) {
        if (part.compare(i, std::char_traits<char>::length(candidate), candidate) == 0) {
          at = i;
          op = candidate;
          break;
        }
      }
    }
    if (at == std::string::npos)
      return bad_request("invalid selector: '" + std::string(selector) + "'; can't understand '" + part + "'");
    auto value = unescape_field_value(std::string_view(part).substr(at + op.size()));
    if (!value) return std::move(value).take_status();
    fs.reqs_.push_back(FieldRequirement{part.substr(0, at), op != "!=", std::move(value).value()});
  }
  return fs;
}

bool FieldSelector::matches(const Getter& getter) const {
  for (const auto& r : reqs_) {
    auto v = getter(r.field);
    const std::string& got = v ? *v : std::string();
    if ((got == r.value) != r.equals) return false;
  }
  return true;
}

std::string FieldSelector::to_string() const {
  std::string out;
  for (size_t i = 0; i < reqs_.size(); ++i) {
    if (i) out += ",";
    out += reqs_[i].field;
    out += reqs_[i].equals ? "=" : "!=";
    out += escape_field_value(reqs_[i].value);
  }
  return out;
}

std::vector<std::string> FieldSelector::fields() const {
  std::vector<std::string> out;
  for (const auto& r : reqs_)
    if (std::find(out.begin(), out.end(), r.field) == out.end()) out.push_back(r.field);
  return out;
}

std::optional<std::string> FieldSelector::requires_exact_match(std::string_view field) const {
  for (const auto& r : reqs_)
    if (r.equals && r.field == field) return r.value;
  return std::nullopt;
}

Status FieldSelector::check_supported(const std::vector<std::string>& supported, UnsupportedStyle style) const {
  for (const auto& r : reqs_) {
    if (std::find(supported.begin(), supported.end(), r.field) != supported.end()) continue;
    if (style == UnsupportedStyle::DefaultMetaOnly)
      return bad_request(go_quote(r.field) + " is not a known field selector: only \"metadata.name\", \"metadata.namespace\"");
    return bad_request("field label not supported: " + r.field);
  }
  return Status::ok();
}

Result<FieldSelector> FieldSelector::transform(
    const std::function<Result<std::pair<std::string, std::string>>(const std::string&, const std::string&)>& fn)
    const {
  FieldSelector out;
  for (const auto& r : reqs_) {
    auto res = fn(r.field, r.value);
    if (!res) return std::move(res).take_status();
    auto [f, v] = std::move(res).value();
    if (f.empty() && v.empty()) continue;
    out.reqs_.push_back(FieldRequirement{std::move(f), r.equals, std::move(v)});
  }
  return out;
}

}  // namespace berth::api
