// Every kind Berth serves, registered in discovery order.
#pragma once

namespace berth::apiserver {
class Api;
void register_kinds(Api& api);
}  // namespace berth::apiserver
