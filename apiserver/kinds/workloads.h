// The workload kinds: core/v1 Pod, apps/v1 Deployment and apps/v1 ReplicaSet, each a Strategy
// (pod.cpp, deployment.cpp, replicaset.cpp) over the shared pod spec rules in pod_template.h.
#pragma once

#include <memory>

#include "apiserver/strategy.h"

namespace berth::apiserver {

std::unique_ptr<Strategy> make_pod_strategy();
std::unique_ptr<Strategy> make_deployment_strategy();
std::unique_ptr<Strategy> make_replicaset_strategy();

}  // namespace berth::apiserver
