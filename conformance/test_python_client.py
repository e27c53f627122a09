"""Debian's python3-kubernetes (the official client) against berth server."""
import threading

import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402


@pytest.fixture(scope="module")
def api_client(server):
    return config.new_client_from_config(config_file=server.kubeconfig)


@pytest.fixture
def ns(api_client, request):
    name = "py-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


def test_configmap_crud(api_client, ns):
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert created.metadata.uid and created.metadata.resource_version
    got = core.read_namespaced_config_map("c", ns)
    assert got.data == {"a": "1"}
    got.data["b"] = "2"
    replaced = core.replace_namespaced_config_map("c", ns, got)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    core.patch_namespaced_config_map("c", ns, {"data": {"c": "3"}})
    assert core.read_namespaced_config_map("c", ns).data == {"a": "1", "b": "2", "c": "3"}
    core.delete_namespaced_config_map("c", ns)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("c", ns)
    assert e.value.status == 404


def test_crud_every_kind(api_client, ns):
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    coord = client.CoordinationV1Api(api_client)
    asv1 = client.AutoscalingV1Api(api_client)
    ev1 = client.EventsV1Api(api_client)
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "img:1"}]}}
    core.create_namespaced_pod(ns, {"metadata": {"name": "p"}, "spec": template["spec"]})
    core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"k": "v"}} if False else
                                  {"metadata": {"name": "s"}, "data": {"k": "dg=="}})
    core.create_namespaced_service(ns, {"metadata": {"name": "svc"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
    apps.create_namespaced_deployment(ns, {"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}})
    apps.create_namespaced_replica_set(ns, {"metadata": {"name": "r"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}})
    coord.create_namespaced_lease(ns, {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}})
    asv1.create_namespaced_horizontal_pod_autoscaler(ns, {
        "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "minReplicas": 1,
                 "maxReplicas": 5, "targetCPUUtilizationPercentage": 70}})
    ev1.create_namespaced_event(ns, {"metadata": {"name": "e"}, "eventTime": "2026-01-01T00:00:00.000000Z",
                                     "reportingController": "test", "reportingInstance": "test-1", "action": "Test",
                                     "reason": "Testing", "note": "hello", "type": "Normal",
                                     "regarding": {"kind": "Pod", "name": "p", "namespace": ns}})
    assert core.read_namespaced_pod("p", ns).spec.containers[0].image == "img:1"
    assert core.read_namespaced_secret("s", ns).data == {"k": "dg=="}
    assert core.read_namespaced_service("svc", ns).spec.cluster_ip
    assert apps.read_namespaced_deployment("d", ns).spec.replicas == 1
    assert apps.read_namespaced_replica_set("r", ns).spec.replicas == 1
    assert coord.read_namespaced_lease("l", ns).spec.holder_identity == "me"
    assert asv1.read_namespaced_horizontal_pod_autoscaler("h", ns).spec.target_cpu_utilization_percentage == 70
    # The same stored object, served as autoscaling/v2 (this client version has no typed v2 API).
    v2, _, _ = api_client.call_api(f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/h", "GET",
                                   response_type="object", auth_settings=["BearerToken"], _return_http_data_only=False)
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert core.read_namespaced_event("e", ns).message == "hello"
    # scale subresource
    apps.patch_namespaced_deployment_scale("d", ns, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment_scale("d", ns).spec.replicas == 3
    for delete in [lambda: core.delete_namespaced_pod("p", ns), lambda: core.delete_namespaced_secret("s", ns),
                   lambda: core.delete_namespaced_service("svc", ns), lambda: apps.delete_namespaced_deployment("d", ns),
                   lambda: apps.delete_namespaced_replica_set("r", ns), lambda: coord.delete_namespaced_lease("l", ns),
                   lambda: asv1.delete_namespaced_horizontal_pod_autoscaler("h", ns),
                   lambda: ev1.delete_namespaced_event("e", ns)]:
        delete()


def test_list_with_selectors_and_pagination(api_client, ns):
    core = client.CoreV1Api(api_client)
    for i in range(7):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm{i}", "labels": {"parity": "even" if i % 2 == 0 else "odd"}}})
    even = core.list_namespaced_config_map(ns, label_selector="parity=even")
    assert sorted(c.metadata.name for c in even.items) == ["cm0", "cm2", "cm4", "cm6"]
    by_name = core.list_namespaced_config_map(ns, field_selector="metadata.name=cm3")
    assert [c.metadata.name for c in by_name.items] == ["cm3"]
    seen, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map(ns, limit=3, _continue=token, label_selector="parity")
        pages += 1
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3 and sorted(seen) == [f"cm{i}" for i in range(7)]


def test_watch_resumes_from_resource_version(api_client, ns):
    core = client.CoreV1Api(api_client)
    first = core.create_namespaced_config_map(ns, {"metadata": {"name": "w1"}})
    rv = first.metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "w2"}})
    core.delete_namespaced_config_map("w1", ns)
    events = []
    for e in watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=2):
        events.append((e["type"], e["object"].metadata.name))
    assert events == [("ADDED", "w2"), ("DELETED", "w1")]


def test_watch_sees_live_events(api_client, ns):
    core = client.CoreV1Api(api_client)
    got = []
    def run():
        for e in watch.Watch().stream(core.list_namespaced_config_map, ns, timeout_seconds=3):
            got.append((e["type"], e["object"].metadata.name))
    t = threading.Thread(target=run)
    t.start()
    import time
    time.sleep(0.8)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "live"}})
    t.join(10)
    assert ("ADDED", "live") in got
