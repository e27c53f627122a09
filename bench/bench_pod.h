// The pod both API benchmarks create: what a Deployment stamps out, ~2 KiB of JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace berth::bench {

// A pod as a Deployment would stamp it out, padded with labels and annotations to ~2 KiB of JSON.
inline nlohmann::json make_pod(const std::string& name) {
  nlohmann::json pod = nlohmann::json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {
      "labels": {"app": "checkout", "tier": "backend", "release": "stable", "team": "payments",
                 "app.kubernetes.io/name": "checkout", "app.kubernetes.io/version": "2.14.1",
                 "pod-template-hash": "7d9f8b6c5d"},
      "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9102",
                      "kubectl.kubernetes.io/restartedAt": "2026-11-26T10:00:00Z"}
    },
    "spec": {
      "containers": [{
        "name": "checkout", "image": "registry.local/shop/checkout:2.14.1", "imagePullPolicy": "IfNotPresent",
        "args": ["--port=8080", "--metrics-port=9102"],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9102, "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"},
                {"name": "DATABASE_URL", "value": "postgres://checkout@db.shop.svc:5432/checkout"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/livez", "port": 8080}, "initialDelaySeconds": 10, "periodSeconds": 10},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/checkout", "readOnly": true}]
      }],
      "volumes": [{"name": "config", "configMap": {"name": "checkout-config"}}],
      "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
      "nodeSelector": {"kubernetes.io/os": "linux"},
      "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                       "tolerationSeconds": 300}]
    }
  })");
  pod["metadata"]["name"] = name;
  std::size_t size = pod.dump().size();
  if (size < 2048)
    pod["metadata"]["annotations"]["bench.berth.dev/padding"] = std::string(2048 - size - 40, 'p');
  return pod;
}

}  // namespace berth::bench
