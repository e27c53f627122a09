// The workload kinds: core/v1 Pod, apps/v1 Deployment and apps/v1 ReplicaSet, each a Strategy
// (pod.cpp, deployment.cpp, replicaset.cpp) over the shared pod spec rules in pod_template.h.
#pragma once

#include <cstdint>
#include <memory>

#include "apiserver/strategy.h"

namespace berth::apiserver {

// not_ready/unreachable: tolerationSeconds of the default NoExecute tolerations pods get.
std::unique_ptr<Strategy> make_pod_strategy(std::int64_t not_ready_seconds = 300, std::int64_t unreachable_seconds = 300);
std::unique_ptr<Strategy> make_deployment_strategy();
std::unique_ptr<Strategy> make_replicaset_strategy();

}  // namespace berth::apiserver
