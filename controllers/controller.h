// What every controller is given and how the manager runs it. A controller registers its
// informers, indexes and handlers in its constructor; start() launches its workers once the
// caches have synced; stop() shuts its queues and joins them.
#pragma once

#include <memory>
#include <string>

#include "controllers/events.h"
#include "controllers/informer.h"
#include "controllers/manager.h"
#include "controllers/util.h"
#include "controllers/workqueue.h"

namespace berth::client {
class Client;
}

namespace berth::controllers {

struct Context {
  std::shared_ptr<client::Client> client;
  InformerFactory& informers;
  EventSink& events;
  Executor& executor;
  const ControllerOptions& options;
};

class Controller {
 public:
  virtual ~Controller() = default;
  virtual std::string name() const = 0;
  virtual void start() = 0;
  virtual void stop() = 0;
};

std::unique_ptr<Controller> new_replicaset_controller(Context& ctx);
std::unique_ptr<Controller> new_deployment_controller(Context& ctx);
std::unique_ptr<Controller> new_garbage_collector(Context& ctx);
std::unique_ptr<Controller> new_namespace_controller(Context& ctx);
std::unique_ptr<Controller> new_node_lifecycle_controller(Context& ctx);
std::unique_ptr<Controller> new_scheduler(Context& ctx);
std::unique_ptr<Controller> new_pod_gc(Context& ctx);
std::unique_ptr<Controller> new_root_ca_publisher(Context& ctx);

// Helpers shared by controllers.

// The group of an apiVersion ("apps/v1" -> "apps", "v1" -> "").
std::string group_of(const std::string& api_version);
// Merge-patches metadata.ownerReferences of obj to refs (null when empty), guarded by the
// object's uid and resourceVersion so a stale cache gets a Conflict.
api::Result<json> patch_owner_references(client::Client& client, const Resource& resource, const json& obj,
                                         const json& refs);
// Removes one finalizer from the live object (reads it first); NotFound counts as done.
api::Status remove_finalizer(client::Client& client, const std::string& path, const std::string& finalizer);

}  // namespace berth::controllers
