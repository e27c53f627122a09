#include "apiserver/kinds/registry.h"

#include "apiserver/api.h"
#include "apiserver/kinds/other_kinds.h"
#include "apiserver/kinds/workloads.h"

namespace berth::apiserver {

void register_kinds(Api& api, const KindOptions& options) {
  // core/v1
  api.add(make_namespace_strategy());
  api.add(make_pod_strategy(options.default_not_ready_toleration_seconds,
                            options.default_unreachable_toleration_seconds));
  api.add(make_node_strategy());
  api.add(make_event_strategy());
  api.add(make_configmap_strategy());
  api.add(make_secret_strategy());
  api.add(make_service_strategy());
  // apps/v1
  api.add(make_deployment_strategy());
  api.add(make_replicaset_strategy());
  // autoscaling/v2 and v1
  api.add(make_hpa_strategy());
  // coordination.k8s.io/v1
  api.add(make_lease_strategy());
  // events.k8s.io/v1
  api.add(make_events_v1_event_strategy());
}

}  // namespace berth::apiserver
