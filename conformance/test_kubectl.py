"""kubectl v1.32 against berth server: the commands users type, with the output Kubernetes gives.
Where an upstream Kubernetes conformance test covers the same behaviour, its name is in the docstring."""
import json
import os
import subprocess
import time

import pytest

DEPLOY_V1 = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  mode: "one"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.local/web:1
        ports:
        - containerPort: 80
        env:
        - name: MODE
          value: one
"""


def test_api_resources_lists_kinds_with_short_names(server):
    out = server.kubectl("api-resources").stdout
    lines = {l.split()[0]: l for l in out.splitlines()[1:]}
    assert "po" in lines["pods"] and "deploy" in lines["deployments"] and "rs" in lines["replicasets"]
    assert "hpa" in lines["horizontalpodautoscalers"]
    for kind in ["namespaces", "nodes", "events", "configmaps", "secrets", "services", "leases"]:
        assert kind in lines, kind


def test_apply_multi_document_create_change_unchanged(server, namespace):
    """Mirrors upstream 'Kubectl client ... should apply a new configuration to an existing RC'."""
    r = server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY_V1)
    assert "configmap/web-config created" in r.stdout and "deployment.apps/web created" in r.stdout
    r = server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY_V1.replace("value: one", "value: two"))
    assert "configmap/web-config unchanged" in r.stdout and "deployment.apps/web configured" in r.stdout
    dep = server.kubectl_json("get", "-n", namespace, "deployment", "web")
    env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "MODE", "value": "two"}]
    assert dep["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in dep["metadata"]["annotations"]
    r = server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY_V1.replace("value: one", "value: two"))
    assert "deployment.apps/web unchanged" in r.stdout


def test_get_output_formats(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY_V1)
    plain = server.kubectl("get", "-n", namespace, "deployments").stdout.splitlines()
    assert plain[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert plain[1].split()[0] == "web"
    wide = server.kubectl("get", "-n", namespace, "deploy", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert "registry.local/web:1" in wide[1] and "app=web" in wide[1]
    y = server.kubectl("get", "-n", namespace, "deploy", "web", "-o", "yaml").stdout
    assert "kind: Deployment" in y and "replicas: 2" in y
    jp = server.kubectl("get", "-n", namespace, "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert jp == "registry.local/web:1"
    everything = server.kubectl("get", "deployments", "-A").stdout.splitlines()
    assert everything[0].split()[0] == "NAMESPACE"
    assert any(l.split()[:2] == [namespace, "web"] for l in everything[1:])
    labels = server.kubectl("get", "-n", namespace, "deploy", "--show-labels").stdout
    assert "app=web" in labels.splitlines()[1]


def test_label_selectors_filter(server, namespace):
    for name, tier in [("a", "front"), ("b", "back"), ("c", "front")]:
        server.kubectl("create", "-n", namespace, "configmap", name)
        server.kubectl("label", "-n", namespace, "configmap", name, f"tier={tier}")
    names = lambda sel: sorted(server.kubectl("get", "-n", namespace, "cm", "-l", sel, "-o", "name").stdout.split())
    assert names("tier=front") == ["configmap/a", "configmap/c"]
    assert names("tier!=front") == ["configmap/b", "configmap/kube-root-ca.crt"] or names("tier!=front") == ["configmap/b"]
    assert names("tier in (back)") == ["configmap/b"]
    assert names("!tier") in ([], ["configmap/kube-root-ca.crt"])


def test_create_commands_protobuf_bodies(server, namespace):
    """kubectl create deployment|configmap|secret|namespace send protobuf bodies."""
    server.kubectl("create", "-n", namespace, "deployment", "pb", "--image=registry.local/pb:1", "--replicas=3")
    dep = server.kubectl_json("get", "-n", namespace, "deployment", "pb")
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/pb:1"
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "pb"}
    server.kubectl("create", "-n", namespace, "configmap", "cfg", "--from-literal=a=1", "--from-literal=b=2")
    assert server.kubectl_json("get", "-n", namespace, "cm", "cfg")["data"] == {"a": "1", "b": "2"}
    server.kubectl("create", "-n", namespace, "secret", "generic", "sec", "--from-literal=password=hunter2")
    sec = server.kubectl_json("get", "-n", namespace, "secret", "sec")
    assert sec["type"] == "Opaque" and sec["data"]["password"] == "aHVudGVyMg=="


def test_run_creates_a_pod(server, namespace):
    server.kubectl("run", "-n", namespace, "solo", "--image=registry.local/solo:1", "--labels=run=solo")
    pod = server.kubectl_json("get", "-n", namespace, "pod", "solo")
    assert pod["spec"]["containers"][0]["image"] == "registry.local/solo:1"
    assert pod["status"]["phase"] == "Pending"
    out = server.kubectl("get", "-n", namespace, "pods").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert out[1].split()[:4] == ["solo", "0/1", "Pending", "0"]


def test_label_annotate_and_three_patch_types(server, namespace):
    server.kubectl("create", "-n", namespace, "configmap", "p", "--from-literal=a=1")
    server.kubectl("label", "-n", namespace, "cm", "p", "x=1")
    server.kubectl("annotate", "-n", namespace, "cm", "p", "note=hello")
    server.kubectl("patch", "-n", namespace, "cm", "p", "--type=merge", "-p", '{"data":{"b":"2"}}')
    server.kubectl("patch", "-n", namespace, "cm", "p", "--type=json", "-p", '[{"op":"remove","path":"/data/a"}]')
    server.kubectl("patch", "-n", namespace, "cm", "p", "-p", '{"data":{"c":"3"}}')  # strategic
    cm = server.kubectl_json("get", "-n", namespace, "cm", "p")
    assert cm["data"] == {"b": "2", "c": "3"}
    assert cm["metadata"]["labels"] == {"x": "1"}
    assert cm["metadata"]["annotations"]["note"] == "hello"


def test_strategic_patch_merges_containers_by_name(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY_V1)
    server.kubectl("patch", "-n", namespace, "deploy", "web", "-p",
                   '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"registry.local/web:2"}]}}}}')
    c = server.kubectl_json("get", "-n", namespace, "deploy", "web")["spec"]["template"]["spec"]["containers"]
    assert len(c) == 1 and c[0]["image"] == "registry.local/web:2" and c[0]["env"][0]["name"] == "MODE"


def test_scale_updates_replicas(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY_V1)
    r = server.kubectl("scale", "-n", namespace, "deployment", "web", "--replicas=5")
    assert "deployment.apps/web scaled" in r.stdout
    assert server.kubectl_json("get", "-n", namespace, "deploy", "web")["spec"]["replicas"] == 5
    server.kubectl("scale", "-n", namespace, "deployment", "web", "--current-replicas=5", "--replicas=1")
    assert server.kubectl_json("get", "-n", namespace, "deploy", "web")["spec"]["replicas"] == 1
    r = server.kubectl("scale", "-n", namespace, "deployment", "web", "--current-replicas=7", "--replicas=2", check=False)
    assert r.returncode != 0


def test_server_side_apply_and_conflict(server, namespace):
    manifest = DEPLOY_V1.split("---\n")[1]
    r = server.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=manifest)
    assert "deployment.apps/web serverside-applied" in r.stdout
    dep = server.kubectl_json("get", "-n", namespace, "deploy", "web", "--show-managed-fields")
    managers = {m["manager"]: m["operation"] for m in dep["metadata"]["managedFields"]}
    assert managers.get("kubectl") == "Apply"
    # Another manager changes replicas; kubectl's next apply of a different value conflicts.
    server.kubectl("apply", "--server-side", "--field-manager=other", "-n", namespace, "-f", "-",
                   input=manifest.replace("replicas: 2", "replicas: 4"), check=False)
    r = server.kubectl("apply", "--server-side", "--field-manager=third", "-n", namespace, "-f", "-",
                       input=manifest.replace("replicas: 2", "replicas: 6"), check=False)
    assert r.returncode != 0 and "conflict" in r.stderr.lower()
    r = server.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=third", "-n", namespace,
                       "-f", "-", input=manifest.replace("replicas: 2", "replicas: 6"))
    assert server.kubectl_json("get", "-n", namespace, "deploy", "web")["spec"]["replicas"] == 6


def test_diff_shows_changes(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY_V1)
    r = server.kubectl("diff", "-n", namespace, "-f", "-", input=DEPLOY_V1.replace("replicas: 2", "replicas: 3"), check=False)
    assert r.returncode == 1, r.stderr
    assert "-  replicas: 2" in r.stdout and "+  replicas: 3" in r.stdout
    r = server.kubectl("diff", "-n", namespace, "-f", "-", input=DEPLOY_V1, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_create_f_and_errors(server, namespace):
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: once\ndata:\n  k: v\n"
    assert "configmap/once created" in server.kubectl("create", "-n", namespace, "-f", "-", input=cm).stdout
    r = server.kubectl("create", "-n", namespace, "-f", "-", input=cm, check=False)
    assert r.returncode != 0
    assert 'Error from server (AlreadyExists): error when creating "STDIN": configmaps "once" already exists' in r.stderr
    r = server.kubectl("get", "-n", namespace, "cm", "missing", check=False)
    assert r.stderr.strip() == 'Error from server (NotFound): configmaps "missing" not found'
    bad = DEPLOY_V1.split("---\n")[1].replace("name: web\n  labels", "name: web3\n  labels").replace("replicas: 2", "replicas: -1")
    r = server.kubectl("create", "-n", namespace, "-f", "-", input=bad, check=False)
    assert 'The Deployment "web3" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0' in r.stderr


def test_unknown_field_rejected_by_strict_validation(server, namespace):
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict\ndata:\n  k: v\nbogus: 1\n"
    r = server.kubectl("create", "-n", namespace, "-f", "-", input=cm, check=False)
    assert r.returncode != 0 and 'unknown field "bogus"' in r.stderr


def test_values_of_the_wrong_type_are_refused_and_nothing_is_stored(server, namespace):
    """Go's typed decoding: a 400 for a body, a 422 on "patch" for a patch; the object is unchanged."""
    pod = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: typed\nspec:\n  containers:\n  - name: c\n"
           "    image: busybox\n    ports:\n    - containerPort: \"80\"\n")
    r = server.kubectl("create", "-n", namespace, "-f", "-", input=pod, check=False)
    assert r.returncode != 0
    assert ('Error from server (BadRequest): error when creating "STDIN": Pod in version "v1" cannot be handled as a '
            'Pod: json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort '
            'of type int32') in r.stderr
    assert server.kubectl("get", "-n", namespace, "pod", "typed", check=False).returncode != 0
    server.kubectl("create", "-n", namespace, "deployment", "typed", "--image=busybox")
    r = server.kubectl("patch", "-n", namespace, "deployment", "typed", "--type=merge", "-p",
                       '{"spec":{"replicas":"3"}}', check=False)
    assert r.returncode != 0
    assert r.stderr.startswith("The request is invalid: patch: Invalid value: ")
    assert ("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
            in r.stderr)
    r = server.kubectl("patch", "-n", namespace, "deployment", "typed", "-p", '{"spec":{"replicas":"3"}}', check=False)
    assert r.returncode != 0
    assert 'The request is invalid: patch: Invalid value: "map[spec:map[replicas:3]]": unrecognized type: int32' in r.stderr
    applied = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: typed\nspec:\n  replicas: \"3\"\n"
    r = server.kubectl("apply", "--server-side", "--force-conflicts", "-n", namespace, "-f", "-", input=applied,
                       check=False)
    assert r.returncode != 0
    assert server.kubectl_json("get", "-n", namespace, "deployment", "typed")["spec"]["replicas"] == 1


def test_timestamps_are_stored_in_go_form(server, namespace):
    """metav1.Time is written back in UTC with whole seconds, as Go marshals it."""
    ev = ("apiVersion: v1\nkind: Event\nmetadata:\n  name: when\ninvolvedObject:\n  kind: Pod\n  name: p\n"
          f"  namespace: {namespace}\n"
          "reason: Testing\nmessage: m\nfirstTimestamp: \"2026-01-01T10:00:00.5+02:00\"\n")
    server.kubectl("create", "-n", namespace, "-f", "-", input=ev)
    assert server.kubectl_json("get", "-n", namespace, "event", "when")["firstTimestamp"] == "2026-01-01T08:00:00Z"
    bad = ev.replace("name: when", "name: never").replace("2026-01-01T10:00:00.5+02:00", "yesterday")
    r = server.kubectl("create", "-n", namespace, "-f", "-", input=bad, check=False)
    assert ('Event in version "v1" cannot be handled as a Event: parsing time "yesterday" as '
            '"2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"') in r.stderr


def test_default_namespace_has_the_kubernetes_service(server):
    svc = server.kubectl_json("get", "-n", "default", "service", "kubernetes")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": server.port}]
    assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}


def test_update_with_stale_resource_version_conflicts(server, namespace):
    server.kubectl("create", "-n", namespace, "configmap", "c1", "--from-literal=a=1")
    cm = server.kubectl_json("get", "-n", namespace, "cm", "c1")
    server.kubectl("patch", "-n", namespace, "cm", "c1", "--type=merge", "-p", '{"data":{"a":"2"}}')
    cm["data"]["a"] = "3"
    r = server.kubectl("replace", "-n", namespace, "-f", "-", input=json.dumps(cm), check=False)
    assert r.returncode != 0
    assert 'Operation cannot be fulfilled on configmaps "c1": the object has been modified' in r.stderr


def test_delete_waits_and_delete_all(server, namespace):
    for n in ["d1", "d2", "d3"]:
        server.kubectl("create", "-n", namespace, "configmap", n)
    r = server.kubectl("delete", "-n", namespace, "configmap", "d1")
    assert r.stdout.strip() == 'configmap "d1" deleted'
    r = server.kubectl("delete", "-n", namespace, "configmap", "--all")
    assert 'configmap "d2" deleted' in r.stdout and 'configmap "d3" deleted' in r.stdout
    left = server.kubectl("get", "-n", namespace, "configmap", "-o", "name").stdout.split()
    assert not any(n in " ".join(left) for n in ["d1", "d2", "d3"])


def test_describe_and_events(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOY_V1)
    uid = server.kubectl_json("get", "-n", namespace, "deploy", "web")["metadata"]["uid"]
    ev = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web.1", "namespace": namespace},
        "involvedObject": {"kind": "Deployment", "name": "web", "namespace": namespace, "apiVersion": "apps/v1",
                           "uid": uid},
        "reason": "ScalingReplicaSet", "message": "Scaled up replica set web-1 to 2", "type": "Normal",
        "source": {"component": "deployment-controller"}, "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
    }
    server.kubectl("create", "-f", "-", input=json.dumps(ev))
    d = server.kubectl("describe", "-n", namespace, "deployment", "web").stdout
    assert "Name:" in d and "web" in d and "Replicas:" in d and "ScalingReplicaSet" in d
    e = server.kubectl("get", "-n", namespace, "events").stdout.splitlines()
    assert e[0].split()[:4] == ["LAST", "SEEN", "TYPE", "REASON"]
    ours = [l for l in e[1:] if "Scaled up replica set web-1 to 2" in l]
    assert len(ours) == 1 and "deployment/web" in ours[0]


def test_explain_pod_spec_containers(server):
    out = server.kubectl("explain", "pod.spec.containers").stdout
    assert "KIND:" in out and "Pod" in out and "FIELDS:" in out
    assert "image" in out and "name" in out


def test_nodes_cordon_uncordon_and_wait(server):
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n-wait", "labels": {"kubernetes.io/hostname": "n-wait"}}}
    server.kubectl("create", "-f", "-", input=json.dumps(node))
    assert "node/n-wait cordoned" in server.kubectl("cordon", "n-wait").stdout
    assert server.kubectl_json("get", "node", "n-wait")["spec"]["unschedulable"] is True
    assert "SchedulingDisabled" in server.kubectl("get", "nodes").stdout
    assert "node/n-wait uncordoned" in server.kubectl("uncordon", "n-wait").stdout
    assert "unschedulable" not in server.kubectl_json("get", "node", "n-wait")["spec"]
    waiter = subprocess.Popen(["kubectl", "wait", "--for=condition=Ready", "node/n-wait", "--timeout=30s"],
                              env=dict(os.environ, HOME=server.home, KUBECONFIG=server.kubeconfig),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    server.kubectl("patch", "node", "n-wait", "--subresource=status", "--type=merge", "-p",
                   '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Test","message":"ok"}]}}')
    out, err = waiter.communicate(timeout=40)
    assert waiter.returncode == 0, err
    assert "node/n-wait condition met" in out


def test_get_watch_streams_changes(server, namespace):
    env = dict(os.environ, HOME=server.home, KUBECONFIG=server.kubeconfig)
    watcher = subprocess.Popen(["kubectl", "get", "-n", namespace, "configmaps", "-w", "--request-timeout=8s"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    server.kubectl("create", "-n", namespace, "configmap", "watched", "--from-literal=a=1")
    time.sleep(1.5)
    watcher.terminate()
    out, _ = watcher.communicate(timeout=10)
    assert "watched" in out


def wait_for(what, fn, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_immortal_namespaces_may_not_be_deleted(server):
    """NamespaceLifecycle admission: default, kube-system and kube-public stay (also with --dry-run)."""
    for ns in ["default", "kube-system", "kube-public"]:
        for extra in [[], ["--dry-run=server"]]:
            r = server.kubectl("delete", "namespace", ns, *extra, check=False)
            assert r.returncode != 0
            assert r.stderr.strip() == f'Error from server (Forbidden): namespaces "{ns}" is forbidden: this namespace may not be deleted'
        assert server.kubectl_json("get", "namespace", ns)["status"]["phase"] == "Active"


def test_terminating_namespace_waits_for_its_content_and_refuses_creates(server):
    """A namespace whose content has finalizers stays Terminating (the namespace controller's
    status writes must not remove it), refuses new content with Kubernetes' message, and goes
    once the content is gone."""
    ns = "t-terminating-waits"
    server.kubectl("create", "namespace", ns)
    delete_namespace_held_by_a_configmap(server, ns)
    conds = lambda: {c["type"]: c for c in server.kubectl_json("get", "namespace", ns)["status"].get("conditions", [])}
    remaining = wait_for("the namespace controller's conditions", lambda: conds().get("NamespaceFinalizersRemaining"))
    assert remaining["status"] == "True" and "example.com/hold in 1 resource instances" in remaining["message"]
    time.sleep(1)
    assert server.kubectl_json("get", "namespace", ns)["status"]["phase"] == "Terminating"
    assert refused_configmap_create(server, ns, "late") == (
        f'error: failed to create configmap: configmaps "late" is forbidden: '
        f'unable to create new content in namespace {ns} because it is being terminated')
    release_held_namespace(server, ns)


def delete_namespace_held_by_a_configmap(server, ns):
    """Starts deleting ns with a configmap whose finalizer keeps the namespace Terminating."""
    server.kubectl("create", "-n", ns, "configmap", "held")
    server.kubectl("patch", "-n", ns, "configmap", "held", "--type=merge", "-p",
                   '{"metadata":{"finalizers":["example.com/hold"]}}')
    server.kubectl("delete", "namespace", ns, "--wait=false")


def release_held_namespace(server, ns):
    server.kubectl("patch", "-n", ns, "configmap", "held", "--type=json", "-p",
                   '[{"op":"remove","path":"/metadata/finalizers"}]')
    wait_for("the namespace to go", lambda: server.kubectl("get", "namespace", ns, check=False).returncode != 0, 30)


def refused_configmap_create(server, ns, name):
    """kubectl's error for a configmap create that the server refuses."""
    r = server.kubectl("create", "-n", ns, "configmap", name, check=False)
    assert r.returncode != 0
    return r.stderr.strip()


def test_namespace_admission_follows_namespace_writes_at_once(server):
    """NamespaceLifecycle answers from what the namespaces are as of each create: a create
    right after the namespace appears is admitted, one right after its deletion began is
    refused, one in a namespace that never existed is NotFound (the server remembers namespace
    states between creates; this checks it never answers from an old one)."""
    ns = "t-admission-follows"
    not_found = f'error: failed to create configmap: namespaces "{ns}" not found'
    assert refused_configmap_create(server, ns, "early") == not_found
    server.kubectl("create", "namespace", ns)
    delete_namespace_held_by_a_configmap(server, ns)  # its first create follows the namespace's
    assert refused_configmap_create(server, ns, "late") == (
        f'error: failed to create configmap: configmaps "late" is forbidden: '
        f'unable to create new content in namespace {ns} because it is being terminated')
    release_held_namespace(server, ns)
    assert refused_configmap_create(server, ns, "after") == not_found


def test_every_namespace_has_kube_root_ca_crt(server, namespace):
    """The root CA publisher: each namespace holds kube-root-ca.crt with the cluster CA, put
    back when deleted or changed."""
    with open(os.path.join(server.data_dir, "pki", "ca.crt")) as f:
        ca = f.read()
    get = lambda: server.kubectl("get", "-n", namespace, "configmap", "kube-root-ca.crt", "-o", "json", check=False)
    cm = json.loads(wait_for("kube-root-ca.crt", lambda: get().returncode == 0 and get().stdout))
    assert cm["data"] == {"ca.crt": ca}
    assert cm["metadata"]["annotations"]["kubernetes.io/description"].startswith(
        "Contains a CA bundle that can be used to verify the kube-apiserver")
    rows = server.kubectl("get", "-n", namespace, "configmaps").stdout.splitlines()
    assert rows[0].split() == ["NAME", "DATA", "AGE"] and rows[1].split()[:2] == ["kube-root-ca.crt", "1"]
    uid = cm["metadata"]["uid"]
    server.kubectl("delete", "-n", namespace, "configmap", "kube-root-ca.crt")
    wait_for("a new kube-root-ca.crt", lambda: get().returncode == 0 and json.loads(get().stdout)["metadata"]["uid"] != uid)
    server.kubectl("patch", "-n", namespace, "configmap", "kube-root-ca.crt", "--type=merge", "-p",
                   '{"data":{"ca.crt":"changed","extra":"x"}}')
    wait_for("kube-root-ca.crt restored", lambda: json.loads(get().stdout)["data"] == {"ca.crt": ca})


def test_logs_of_an_unscheduled_pod_are_empty(server, namespace):
    """LogLocation has no node to ask for a pod not yet scheduled: 204, kubectl prints nothing
    and succeeds; exec on it is a 400."""
    server.kubectl("run", "-n", namespace, "unplaced", "--image=registry.local/unplaced:1",
                   "--overrides", '{"spec":{"nodeSelector":{"nowhere":"true"}}}')
    r = server.kubectl("logs", "-n", namespace, "unplaced")
    assert r.stdout == "" and r.stderr == ""
    r = server.kubectl("exec", "-n", namespace, "unplaced", "--", "true", check=False)
    assert r.returncode != 0
    assert "Error from server (BadRequest): pod unplaced does not have a host assigned" in r.stderr


def test_cluster_ips_and_node_ports_are_taken_cluster_wide(server, namespace):
    """Cluster IPs and node ports come from cluster-wide pools: asking for one another service
    holds, in any namespace, is refused with the allocator's words; a service keeps its own."""
    server.kubectl("create", "-n", namespace, "service", "nodeport", "first", "--tcp=80:80")
    first = server.kubectl_json("get", "-n", namespace, "service", "first")
    ip, port = first["spec"]["clusterIP"], first["spec"]["ports"][0]["nodePort"]

    r = server.kubectl("create", "-n", namespace, "service", "clusterip", "same-ip", "--tcp=80:80",
                       f"--clusterip={ip}", check=False)
    assert r.returncode != 0
    assert r.stderr.strip() == (f'error: failed to create ClusterIP service: Service "same-ip" is invalid: '
                                f'spec.clusterIPs: Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: '
                                f'provided IP is already allocated')
    r = server.kubectl("create", "-n", "default", "service", "nodeport", "same-port", "--tcp=80:80",
                       f"--node-port={port}", check=False)
    assert r.returncode != 0
    assert r.stderr.strip() == (f'error: failed to create NodePort service: Service "same-port" is invalid: '
                                f'spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated')
    r = server.kubectl("create", "-n", namespace, "service", "clusterip", "kube-ip", "--tcp=80:80",
                       "--clusterip=10.96.0.1", check=False)
    assert "failed to allocate IP 10.96.0.1: provided IP is already allocated" in r.stderr

    server.kubectl("create", "-n", namespace, "service", "nodeport", "second", "--tcp=80:80")
    r = server.kubectl("patch", "-n", namespace, "service", "second", "--type=json", "-p",
                       json.dumps([{"op": "replace", "path": "/spec/ports/0/nodePort", "value": port}]), check=False)
    assert r.returncode != 0
    assert f"spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated" in r.stderr
    # Writes that keep a service's own values go through.
    server.kubectl("label", "-n", namespace, "service", "first", "checked=yes")
    assert server.kubectl_json("get", "-n", namespace, "service", "first")["spec"]["clusterIP"] == ip
