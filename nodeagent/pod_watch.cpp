#include "nodeagent/pod_watch.h"

#include <nlohmann/json.hpp>

#include "client/client.h"
#include "nodeagent/util.h"

namespace berth::nodeagent {

void follow_watch(client::WatchStream& watch, std::string& rv, const std::atomic<bool>& stopping,
                  const std::function<void(const std::string& type, const nlohmann::json& object)>& on_event,
                  const char* what) {
  while (!stopping) {
    auto ev = watch.next(std::chrono::seconds(1));
    if (!ev) {
      if (ev.status().reason() == api::Reason::Gone || ev.status().reason() == api::Reason::Expired) rv.clear();
      else if (!ev.status().is_ok()) BERTH_LOGW("%s watch ended: %s", what, ev.status().message().c_str());
      return;
    }
    if (!*ev) continue;
    const nlohmann::json& e = **ev;
    std::string type = jstr(e, {"type"});
    const nlohmann::json& obj = at(e, {"object"});
    if (type == "ERROR") {
      BERTH_LOGW("%s watch error: %s", what, jstr(obj, {"message"}).c_str());
      if (jint(obj, {"code"}) == 410) rv.clear();
      return;
    }
    std::string new_rv = jstr(obj, {"metadata", "resourceVersion"});
    if (!new_rv.empty()) rv = new_rv;
    if (type != "BOOKMARK") on_event(type, obj);
  }
}

}  // namespace berth::nodeagent
