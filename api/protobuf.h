// Protobuf request bodies: Kubernetes' `application/vnd.kubernetes.protobuf` envelope decoded into the
// JSON object a client would have sent as JSON, driven by the field numbers in the schema (api/schema.h).
// kubectl 1.32 sends protobuf for `create deployment|namespace|configmap|secret|service`, `autoscale`
// and the DeleteOptions of drain's fallback delete. Only decoding: Berth always answers in JSON.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "api/schema.h"
#include "api/status.h"

namespace berth::api {

inline constexpr std::string_view kProtobufContentType = "application/vnd.kubernetes.protobuf";

// True when the body starts with the envelope's magic bytes "k8s\0".
bool is_kubernetes_protobuf(std::string_view body);

// Decodes "k8s\0" + runtime.Unknown{typeMeta, raw, contentEncoding, contentType} into the object with
// apiVersion and kind from the envelope. Values follow Go's JSON encoding of the decoded Go struct, as
// `kubectl ... -o json` prints it: omitempty fields left out when zero, non-pointer structs always present,
// unset Time as null, Secret data as base64. A missing or foreign magic, truncated or malformed message,
// unknown kind or a content encoding -> 400 BadRequest. `fallback` supplies the kind when the envelope
// carries no TypeMeta.
Result<nlohmann::json> decode_protobuf(std::string_view body, const GroupVersionKind* fallback = nullptr,
                                       const Schema& schema = Schema::get());

// Decodes one message of the given schema type (no envelope, no apiVersion/kind added).
Result<nlohmann::json> decode_protobuf_message(const TypeDef& type, std::string_view bytes,
                                               const Schema& schema = Schema::get());

}  // namespace berth::api
