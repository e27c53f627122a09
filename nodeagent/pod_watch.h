// Following a watch of pods, as the agent and the simulated nodes both do.
#pragma once

#include <atomic>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace berth::client {
class WatchStream;
}

namespace berth::nodeagent {

// Delivers the events of one open watch until it ends or `stopping` is set. rv follows every
// event's resourceVersion and is cleared when the server says it is too old (410 Gone), so the
// caller lists again. BOOKMARK events only move rv. `what` names the watch in log lines.
void follow_watch(client::WatchStream& watch, std::string& rv, const std::atomic<bool>& stopping,
                  const std::function<void(const std::string& type, const nlohmann::json& object)>& on_event,
                  const char* what);

}  // namespace berth::nodeagent
