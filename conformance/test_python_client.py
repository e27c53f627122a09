"""Debian's python3-kubernetes (the official client) against berth server."""
import json
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
    import hashlib
    import re
    # Parametrized tests share a prefix: a digest of the whole test id keeps their namespaces apart.
    digest = hashlib.sha1(request.node.name.encode()).hexdigest()[:6]
    name = "py-" + re.sub("[^a-z0-9-]", "-", request.node.name.lower().replace("_", "-"))[:40].strip("-") + "-" + digest
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
    # The root CA publisher adds kube-root-ca.crt to every new namespace, at a moment of its own
    # (as on Kubernetes): only this test's objects are in question.
    assert [e for e in events if e[1] in ("w1", "w2")] == [("ADDED", "w2"), ("DELETED", "w1")]


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


def _eventually_gone(read, timeout=15):
    import time
    deadline = time.time() + timeout
    while True:
        try:
            obj = read()
        except ApiException as e:
            assert e.status == 404, e
            return None
        if time.time() > deadline:
            return obj
        time.sleep(0.2)


def _replace_retrying(read, replace, mutate):
    """Read-modify-replace as clients do, retrying when a controller wrote in between (409)."""
    for _ in range(10):
        obj = read()
        mutate(obj)
        try:
            return replace(obj)
        except ApiException as e:
            if e.status != 409:
                raise
    raise AssertionError("replace kept conflicting")


def _labels(obj):
    obj.metadata.labels = dict(obj.metadata.labels or {}, replaced="yes")


def _kinds(api_client, ns):
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    coord = client.CoordinationV1Api(api_client)
    asv1 = client.AutoscalingV1Api(api_client)
    ev1 = client.EventsV1Api(api_client)
    spec = {"containers": [{"name": "c", "image": "img:1"}]}
    template = {"metadata": {"labels": {"app": "x"}}, "spec": spec}
    selector = {"matchLabels": {"app": "x"}}
    # kind: (create(body), read(name), list(), replace(name, obj), patch(name, body), delete(name), body)
    return {
        "Namespace": (core.create_namespace, core.read_namespace, core.list_namespace, core.replace_namespace,
                      core.patch_namespace, core.delete_namespace, {"metadata": {"name": ns + "-k"}}),
        "Node": (core.create_node, core.read_node, core.list_node, core.replace_node, core.patch_node,
                 core.delete_node, {"metadata": {"name": ns + "-node"}}),
        "ConfigMap": (lambda b: core.create_namespaced_config_map(ns, b),
                      lambda n: core.read_namespaced_config_map(n, ns),
                      lambda: core.list_namespaced_config_map(ns),
                      lambda n, o: core.replace_namespaced_config_map(n, ns, o),
                      lambda n, b: core.patch_namespaced_config_map(n, ns, b),
                      lambda n: core.delete_namespaced_config_map(n, ns),
                      {"metadata": {"name": "cm"}, "data": {"a": "1"}}),
        "Secret": (lambda b: core.create_namespaced_secret(ns, b),
                   lambda n: core.read_namespaced_secret(n, ns),
                   lambda: core.list_namespaced_secret(ns),
                   lambda n, o: core.replace_namespaced_secret(n, ns, o),
                   lambda n, b: core.patch_namespaced_secret(n, ns, b),
                   lambda n: core.delete_namespaced_secret(n, ns),
                   {"metadata": {"name": "s"}, "data": {"k": "dg=="}}),
        "Service": (lambda b: core.create_namespaced_service(ns, b),
                    lambda n: core.read_namespaced_service(n, ns),
                    lambda: core.list_namespaced_service(ns),
                    lambda n, o: core.replace_namespaced_service(n, ns, o),
                    lambda n, b: core.patch_namespaced_service(n, ns, b),
                    lambda n: core.delete_namespaced_service(n, ns),
                    {"metadata": {"name": "svc"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}),
        "Pod": (lambda b: core.create_namespaced_pod(ns, b),
                lambda n: core.read_namespaced_pod(n, ns),
                lambda: core.list_namespaced_pod(ns),
                lambda n, o: core.replace_namespaced_pod(n, ns, o),
                lambda n, b: core.patch_namespaced_pod(n, ns, b),
                # Other tests leave nodes whose agents are gone: a pod the scheduler bound to one
                # would wait for its kubelet through a graceful deletion, so this one is forced.
                lambda n: core.delete_namespaced_pod(n, ns, grace_period_seconds=0),
                {"metadata": {"name": "p"}, "spec": spec}),
        "Event": (lambda b: core.create_namespaced_event(ns, b),
                  lambda n: core.read_namespaced_event(n, ns),
                  lambda: core.list_namespaced_event(ns),
                  lambda n, o: core.replace_namespaced_event(n, ns, o),
                  lambda n, b: core.patch_namespaced_event(n, ns, b),
                  lambda n: core.delete_namespaced_event(n, ns),
                  {"metadata": {"name": "ev"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
                   "reason": "Testing", "message": "hello", "type": "Normal"}),
        "Deployment": (lambda b: apps.create_namespaced_deployment(ns, b),
                       lambda n: apps.read_namespaced_deployment(n, ns),
                       lambda: apps.list_namespaced_deployment(ns),
                       lambda n, o: apps.replace_namespaced_deployment(n, ns, o),
                       lambda n, b: apps.patch_namespaced_deployment(n, ns, b),
                       lambda n: apps.delete_namespaced_deployment(n, ns),
                       {"metadata": {"name": "d"}, "spec": {"replicas": 0, "selector": selector, "template": template}}),
        "ReplicaSet": (lambda b: apps.create_namespaced_replica_set(ns, b),
                       lambda n: apps.read_namespaced_replica_set(n, ns),
                       lambda: apps.list_namespaced_replica_set(ns),
                       lambda n, o: apps.replace_namespaced_replica_set(n, ns, o),
                       lambda n, b: apps.patch_namespaced_replica_set(n, ns, b),
                       lambda n: apps.delete_namespaced_replica_set(n, ns),
                       {"metadata": {"name": "r"}, "spec": {"replicas": 0, "selector": selector, "template": template}}),
        "HorizontalPodAutoscaler": (
            lambda b: asv1.create_namespaced_horizontal_pod_autoscaler(ns, b),
            lambda n: asv1.read_namespaced_horizontal_pod_autoscaler(n, ns),
            lambda: asv1.list_namespaced_horizontal_pod_autoscaler(ns),
            lambda n, o: asv1.replace_namespaced_horizontal_pod_autoscaler(n, ns, o),
            lambda n, b: asv1.patch_namespaced_horizontal_pod_autoscaler(n, ns, b),
            lambda n: asv1.delete_namespaced_horizontal_pod_autoscaler(n, ns),
            {"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                                    "name": "d"}, "maxReplicas": 5}}),
        "Lease": (lambda b: coord.create_namespaced_lease(ns, b),
                  lambda n: coord.read_namespaced_lease(n, ns),
                  lambda: coord.list_namespaced_lease(ns),
                  lambda n, o: coord.replace_namespaced_lease(n, ns, o),
                  lambda n, b: coord.patch_namespaced_lease(n, ns, b),
                  lambda n: coord.delete_namespaced_lease(n, ns),
                  {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}),
        "events.k8s.io/Event": (
            lambda b: ev1.create_namespaced_event(ns, b),
            lambda n: ev1.read_namespaced_event(n, ns),
            lambda: ev1.list_namespaced_event(ns),
            lambda n, o: ev1.replace_namespaced_event(n, ns, o),
            lambda n, b: ev1.patch_namespaced_event(n, ns, b),
            lambda n: ev1.delete_namespaced_event(n, ns),
            # Microseconds that are not zero: this client writes a datetime back with isoformat(),
            # which drops zero microseconds, and MicroTime then refuses it (as Kubernetes does).
            {"metadata": {"name": "e2"}, "eventTime": "2026-01-01T00:00:00.123456Z", "reportingController": "test",
             "reportingInstance": "test-1", "action": "Test", "reason": "Testing", "note": "hello", "type": "Normal",
             "regarding": {"kind": "Pod", "name": "p", "namespace": ns}}),
    }


KINDS = ["Namespace", "Node", "ConfigMap", "Secret", "Service", "Pod", "Event", "Deployment", "ReplicaSet",
         "HorizontalPodAutoscaler", "Lease", "events.k8s.io/Event"]


@pytest.mark.parametrize("kind", KINDS)
def test_create_read_list_replace_patch_delete(api_client, ns, kind):
    create, read, lst, replace, patch, delete, body = _kinds(api_client, ns)[kind]
    name = body["metadata"]["name"]
    created = create(body)
    assert created.metadata.name == name and created.metadata.uid and created.metadata.creation_timestamp
    assert name in [o.metadata.name for o in lst().items]
    replaced = _replace_retrying(lambda: read(name), lambda o: replace(name, o), _labels)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    assert read(name).metadata.labels["replaced"] == "yes"
    patch(name, {"metadata": {"labels": {"patched": "yes"}}})
    labels = read(name).metadata.labels
    assert labels["patched"] == "yes" and labels["replaced"] == "yes"
    # An update from a stale copy is refused (optimistic concurrency).
    stale = created
    stale.metadata.labels = {"stale": "yes"}
    with pytest.raises(ApiException) as e:
        replace(name, stale)
    assert e.value.status == 409
    delete(name)
    left = _eventually_gone(lambda: read(name))
    if kind == "Namespace":
        # Namespaces are finalized by the namespace controller; until then they are Terminating.
        assert left is None or left.status.phase == "Terminating"
    else:
        assert left is None


def test_binding_assigns_the_node_with_preconditions_and_annotations(api_client, ns):
    """pods/binding as the scheduler uses it (BindingREST): preconditions on the pod's uid,
    annotations copied onto the pod, a second binding refused."""
    core = client.CoreV1Api(api_client)
    pod = core.create_namespaced_pod(ns, {"metadata": {"name": "bound"}, "spec": {
        "schedulerName": "nobody", "containers": [{"name": "c", "image": "img:1"}]}})

    def bind(body):
        return api_client.call_api(f"/api/v1/namespaces/{ns}/pods/bound/binding", "POST", body=body,
                                   response_type="object", auth_settings=["BearerToken"])

    target = {"apiVersion": "v1", "kind": "Node", "name": "node-a"}
    with pytest.raises(ApiException) as e:
        bind({"metadata": {"name": "other"}, "target": target})
    assert e.value.status == 400 and "name in URL does not match name in Binding object" in e.value.body
    with pytest.raises(ApiException) as e:
        bind({"metadata": {"name": "bound", "uid": "not-the-uid"}, "target": target})
    assert e.value.status == 409 and "Precondition failed: UID in precondition: not-the-uid" in e.value.body
    with pytest.raises(ApiException) as e:
        bind({"metadata": {"name": "bound"}, "target": {"kind": "Pod", "name": "x"}})
    assert e.value.status == 422 and "target.kind" in e.value.body
    bind({"metadata": {"name": "bound", "uid": pod.metadata.uid, "annotations": {"bound-by": "test"}},
          "target": target})
    got = core.read_namespaced_pod("bound", ns)
    assert got.spec.node_name == "node-a"
    assert got.metadata.annotations == {"bound-by": "test"}
    assert [c.status for c in got.status.conditions if c.type == "PodScheduled"] == ["True"]
    # The bind goes past the field manager, as Kubernetes' storage-level update does.
    assert [m.manager for m in got.metadata.managed_fields] == [m.manager for m in pod.metadata.managed_fields]
    with pytest.raises(ApiException) as e:
        bind({"metadata": {"name": "bound"}, "target": {"name": "node-b"}})
    assert e.value.status == 409
    assert json.loads(e.value.body)["message"].endswith('pod bound is already assigned to node "node-a"')
