// Events the agent posts about pods and its node (source "kubelet", as `kubectl describe` shows
// them). Sent from a queue on its own thread; a repeat of the same event within ten minutes
// bumps the count of the existing Event, as client-go's correlator does.
#pragma once

#include <memory>
#include <string>

#include "nodeagent/util.h"

namespace berth::client {
class Client;
}

namespace berth::nodeagent {

class EventRecorder {
 public:
  static std::unique_ptr<EventRecorder> create(client::Client* client, std::string node_name);
  virtual ~EventRecorder() = default;
  // field_path: "spec.containers{name}" or "" for the pod itself. type: Normal | Warning.
  virtual void pod_event(const json& pod, const std::string& field_path, const std::string& type,
                         const std::string& reason, const std::string& message) = 0;
  virtual void node_event(const std::string& node_name, const std::string& type, const std::string& reason,
                          const std::string& message) = 0;
  virtual void stop() = 0;
};

// "spec.containers{c}" / "spec.initContainers{c}" for a container of the pod.
std::string container_field_path(const json& pod, const std::string& container);

}  // namespace berth::nodeagent
