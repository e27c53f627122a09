// Small helpers over Kubernetes objects held as JSON, shared by the server, the controllers
// and the node agent.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

namespace berth::api {

// The value at a path of object keys; a null json when any step is absent or not an object.
const nlohmann::json& at(const nlohmann::json& obj, std::initializer_list<const char*> path);

// n characters for generated names (generateName, pod names), from Kubernetes' alphabet:
// no vowels and no look-alike characters.
std::string random_suffix(std::size_t n);

}  // namespace berth::api
