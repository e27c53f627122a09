// Every kind Berth serves, registered in discovery order.
#pragma once

#include <cstdint>

namespace berth::apiserver {
class Api;

// What the kinds' admission takes from the server's flags.
struct KindOptions {
  // tolerationSeconds of the not-ready and unreachable NoExecute tolerations every pod gets
  // (kube-apiserver's --default-not-ready-toleration-seconds and
  // --default-unreachable-toleration-seconds).
  std::int64_t default_not_ready_toleration_seconds = 300;
  std::int64_t default_unreachable_toleration_seconds = 300;
};

void register_kinds(Api& api, const KindOptions& options = {});
}  // namespace berth::apiserver
