#include "apiserver/strategy.h"

#include <chrono>
#include <ctime>

namespace berth::apiserver {

json Strategy::to_version(json stored, const std::string& version) const {
  const auto& i = info();
  stored["apiVersion"] = i.group.empty() ? version : i.group + "/" + version;
  stored["kind"] = i.kind;
  return stored;
}

api::Result<json> Strategy::from_version(json external, const std::string& version) const {
  const auto& i = info();
  external["apiVersion"] = i.group.empty() ? i.storage_version : i.group + "/" + i.storage_version;
  external["kind"] = i.kind;
  return external;
}

void Strategy::prepare_for_create(json& obj) const {
  if (info().has_status) obj.erase("status");
}

bool Strategy::spec_changed(const json& obj, const json& old) const {
  for (const auto& [k, v] : obj.items()) {
    if (k == "metadata" || k == "status" || k == "apiVersion" || k == "kind") continue;
    auto it = old.find(k);
    if (it == old.end() || *it != v) return true;
  }
  for (const auto& [k, v] : old.items()) {
    if (k == "metadata" || k == "status" || k == "apiVersion" || k == "kind") continue;
    if (!obj.contains(k)) return true;
  }
  return false;
}

std::vector<Column> Strategy::columns() const {
  return {{"Name", "string", "name", "Name must be unique within a namespace.", 0},
          {"Age", "string", "", "Time since the object was created.", 0}};
}

json Strategy::cells(const json& obj) const {
  return json::array({at(obj, {"metadata", "name"}), age(obj)});
}

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::int64_t parse_rfc3339(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

// Kubernetes' duration.HumanDuration: two significant units, coarser as time goes on.
std::string human_duration(std::int64_t s) {
  if (s < 0) s = 0;
  if (s < 120) return std::to_string(s) + "s";
  std::int64_t m = s / 60;
  if (m < 10) {
    std::int64_t rs = s % 60;
    return rs == 0 ? std::to_string(m) + "m" : std::to_string(m) + "m" + std::to_string(rs) + "s";
  }
  if (m < 180) return std::to_string(m) + "m";
  std::int64_t h = s / 3600;
  if (h < 8) {
    std::int64_t rm = m % 60;
    return rm == 0 ? std::to_string(h) + "h" : std::to_string(h) + "h" + std::to_string(rm) + "m";
  }
  if (h < 48) return std::to_string(h) + "h";
  if (h < 24 * 8) {
    std::int64_t rh = h % 24;
    return rh == 0 ? std::to_string(h / 24) + "d" : std::to_string(h / 24) + "d" + std::to_string(rh) + "h";
  }
  if (h < 24 * 365 * 2) return std::to_string(h / 24) + "d";
  if (h < 24 * 365 * 8) {
    std::int64_t dy = (h / 24) % 365;
    return dy == 0 ? std::to_string(h / 24 / 365) + "y" : std::to_string(h / 24 / 365) + "y" + std::to_string(dy) + "d";
  }
  return std::to_string(h / 24 / 365) + "y";
}

std::string age(const json& obj) {
  const json& ts = at(obj, {"metadata", "creationTimestamp"});
  if (!ts.is_string()) return "<unknown>";
  std::int64_t created = parse_rfc3339(ts.get<std::string>());
  if (created == 0) return "<unknown>";
  return human_duration(static_cast<std::int64_t>(std::time(nullptr)) - created);
}

}  // namespace berth::apiserver
