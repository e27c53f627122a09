"""Controllers and scheduler inside berth server, with simulated nodes from `berth agent --simulate`,
driven by kubectl as a user would. Upstream counterparts named where they exist."""
import json
import os
import subprocess
import time

import pytest

import conftest


@pytest.fixture(scope="module")
def sim_nodes(server):
    """Three hollow nodes (sim-0..2) with 4 cpus each; pods bound to them turn Running/Ready."""
    agent = subprocess.Popen(
        [conftest.BERTH, "agent", "--simulate", "--nodes", "3", "--node-name-prefix", "sim-",
         "--server", server.url, "--token-file", os.path.join(server.data_dir, "node-token"),
         "--ca-file", os.path.join(server.data_dir, "pki", "ca.crt"),
         "--data-dir", os.path.join(server.data_dir, "sim-agent"), "--listen", "",
         "--pod-start-delay", "200ms", "--sim-cpu", "4", "--sim-memory", "8Gi"],
        stdout=open(os.path.join(server.data_dir, "sim-agent.log"), "wb"), stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        out = server.kubectl("get", "nodes", "-l", "!node-role.kubernetes.io/control-plane", "-o", "json").stdout
        ready = [n for n in json.loads(out)["items"] if n["metadata"]["name"].startswith("sim-") and any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))]
        if len(ready) == 3:
            break
        time.sleep(0.3)
    else:
        agent.kill()
        pytest.fail("simulated nodes did not become Ready")
    yield ["sim-0", "sim-1", "sim-2"]
    agent.terminate()
    agent.wait(10)


def pods(server, ns, selector):
    return server.kubectl_json("get", "pods", "-n", ns, "-l", selector)["items"]


def test_deployment_rolls_out_and_spreads(server, sim_nodes, namespace):
    """Upstream: 'Deployment should run the lifecycle of a Deployment'."""
    server.kubectl("create", "deployment", "web", "-n", namespace, "--image=registry.local/web:1", "--replicas=3")
    r = server.kubectl("rollout", "status", "-n", namespace, "deployment/web", "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in r.stdout
    ps = pods(server, namespace, "app=web")
    assert len(ps) == 3 and all(p["status"]["phase"] == "Running" for p in ps)
    assert len({p["spec"]["nodeName"] for p in ps}) == 3, "one owner's pods spread over the nodes"
    rs = server.kubectl_json("get", "rs", "-n", namespace)["items"]
    assert len(rs) == 1 and rs[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert all(p["metadata"]["name"].startswith(rs[0]["metadata"]["name"] + "-") for p in ps)


def test_image_change_history_undo_restart(server, sim_nodes, namespace):
    """Upstream: 'Deployment RollingUpdateDeployment should delete old pods and create new ones'."""
    server.kubectl("create", "deployment", "app", "-n", namespace, "--image=registry.local/app:1", "--replicas=2")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/app", "--timeout=60s")
    server.kubectl("set", "image", "-n", namespace, "deployment/app", "app=registry.local/app:2")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/app", "--timeout=60s")
    images = {p["spec"]["containers"][0]["image"] for p in pods(server, namespace, "app=app")
              if "deletionTimestamp" not in p["metadata"]}
    assert images == {"registry.local/app:2"}
    hist = server.kubectl("rollout", "history", "-n", namespace, "deployment/app").stdout
    assert "1 " in hist and "2 " in hist
    server.kubectl("rollout", "undo", "-n", namespace, "deployment/app")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/app", "--timeout=60s")
    dep = server.kubectl_json("get", "deploy", "-n", namespace, "app")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/app:1"
    # The rollback reused revision 1's replica set, which became revision 3.
    revisions = [l.split()[0] for l in server.kubectl("rollout", "history", "-n", namespace,
                                                       "deployment/app").stdout.splitlines()[2:] if l.strip()]
    assert revisions == ["2", "3"], revisions
    assert len(server.kubectl_json("get", "rs", "-n", namespace)["items"]) == 2
    server.kubectl("rollout", "restart", "-n", namespace, "deployment/app")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/app", "--timeout=60s")
    dep = server.kubectl_json("get", "deploy", "-n", namespace, "app")
    assert "kubectl.kubernetes.io/restartedAt" in dep["spec"]["template"]["metadata"]["annotations"]


def test_scale_and_replace_deleted_pod(server, sim_nodes, namespace):
    """Upstream: 'ReplicaSet should serve a basic image on each replica' (replacement part)."""
    server.kubectl("create", "deployment", "s", "-n", namespace, "--image=registry.local/s:1", "--replicas=1")
    server.kubectl("scale", "-n", namespace, "deployment/s", "--replicas=4")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/s", "--timeout=60s")
    assert len(pods(server, namespace, "app=s")) == 4
    victim = pods(server, namespace, "app=s")[0]["metadata"]["name"]
    server.kubectl("delete", "pod", "-n", namespace, victim, "--wait=true", "--timeout=60s")
    deadline = time.time() + 30
    while time.time() < deadline:
        live = [p for p in pods(server, namespace, "app=s") if "deletionTimestamp" not in p["metadata"]]
        if len(live) == 4 and victim not in {p["metadata"]["name"] for p in live}:
            break
        time.sleep(0.3)
    else:
        pytest.fail("the replica set did not replace the deleted pod")
    server.kubectl("scale", "-n", namespace, "deployment/s", "--replicas=1")
    deadline = time.time() + 30
    while time.time() < deadline and len(pods(server, namespace, "app=s")) != 1:
        time.sleep(0.3)
    assert len(pods(server, namespace, "app=s")) == 1


def test_unschedulable_pod_stays_pending_with_message(server, sim_nodes, namespace):
    """Upstream: '[sig-scheduling] SchedulerPredicates [Serial] validates resource limits of pods that
    are allowed to run [Conformance]' (the pod that fits nowhere)."""
    server.kubectl("run", "huge", "-n", namespace, "--image=registry.local/x:1", "--overrides",
                   json.dumps({"spec": {"containers": [{"name": "huge", "image": "registry.local/x:1",
                                                        "resources": {"requests": {"cpu": "64"}}}]}}))
    deadline = time.time() + 30
    cond = None
    while time.time() < deadline:
        pod = server.kubectl_json("get", "pod", "-n", namespace, "huge")
        cond = next((c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled"), None)
        if cond and cond["status"] == "False":
            break
        time.sleep(0.3)
    assert cond and cond["reason"] == "Unschedulable"
    assert "Insufficient cpu" in cond["message"] and "nodes are available" in cond["message"]
    assert pod["status"]["phase"] == "Pending"


def test_delete_deployment_removes_dependents(server, sim_nodes, namespace):
    """Background propagation: the garbage collector removes the replica set and its pods.
    Upstream: '[sig-api-machinery] Garbage collector should delete RS created by deployment when not
    orphaning [Conformance]'."""
    server.kubectl("create", "deployment", "gc", "-n", namespace, "--image=registry.local/gc:1", "--replicas=2")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/gc", "--timeout=60s")
    server.kubectl("delete", "deployment", "-n", namespace, "gc")
    deadline = time.time() + 30
    while time.time() < deadline:
        left = server.kubectl("get", "rs,pods", "-n", namespace, "-l", "app=gc", "-o", "name").stdout.split()
        if not left:
            break
        time.sleep(0.3)
    assert not left


def test_namespace_deletion_removes_contents(server, sim_nodes):
    """Upstream: 'Namespaces should ensure that all pods are removed when a namespace is deleted'."""
    server.kubectl("create", "namespace", "doomed")
    server.kubectl("create", "deployment", "d", "-n", "doomed", "--image=registry.local/d:1", "--replicas=2")
    server.kubectl("create", "configmap", "c", "-n", "doomed")
    server.kubectl("rollout", "status", "-n", "doomed", "deployment/d", "--timeout=60s")
    r = server.kubectl("delete", "namespace", "doomed", "--timeout=60s")
    assert 'namespace "doomed" deleted' in r.stdout
    assert server.kubectl("get", "namespace", "doomed", check=False).returncode != 0


def test_cordon_and_drain(server, sim_nodes, namespace):
    """kubectl drain: cordons the node and evicts its pods through pods/eviction; the replica set
    recreates them on the other nodes."""
    server.kubectl("create", "deployment", "dr", "-n", namespace, "--image=registry.local/dr:1", "--replicas=3")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/dr", "--timeout=60s")
    node = "sim-0"
    on_node = [p["metadata"]["name"] for p in pods(server, namespace, "app=dr") if p["spec"]["nodeName"] == node]
    r = server.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s")
    assert server.kubectl_json("get", "node", node)["spec"].get("unschedulable") is True
    for name in on_node:  # through the eviction API, as kubectl drain does by default
        assert f"pod/{name} evicted" in r.stdout, r.stdout
    deadline = time.time() + 60
    while time.time() < deadline:
        live = [p for p in pods(server, namespace, "app=dr") if "deletionTimestamp" not in p["metadata"]]
        if len(live) == 3 and all(p["spec"].get("nodeName") not in (None, node) for p in live):
            break
        time.sleep(0.3)
    else:
        pytest.fail("drained pods were not recreated on other nodes")
    server.kubectl("uncordon", node)


# ---- helpers for the tests below ---------------------------------------------------------------

def wait_until(what, predicate, timeout=60, interval=0.2):
    """Polls predicate until it returns something truthy; fails the test naming `what` otherwise."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


def live(items):
    return [i for i in items if "deletionTimestamp" not in i["metadata"]]


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def deployment_manifest(name, replicas, image, **spec):
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{"name": "main", "image": image}]}}}}
    d["spec"].update(spec)
    return d


def start_sim_agent(server, count, prefix, extra=()):
    return subprocess.Popen(
        [conftest.BERTH, "agent", "--simulate", "--nodes", str(count), "--node-name-prefix", prefix,
         "--server", server.url, "--token-file", os.path.join(server.data_dir, "node-token"),
         "--ca-file", os.path.join(server.data_dir, "pki", "ca.crt"),
         "--data-dir", os.path.join(server.data_dir, "agent-" + prefix.strip("-")), "--listen", "",
         "--pod-start-delay", "200ms", "--sim-cpu", "4", "--sim-memory", "8Gi", *extra],
        stdout=open(os.path.join(server.data_dir, f"agent-{prefix.strip('-')}.log"), "wb"), stderr=subprocess.STDOUT)


def wait_nodes_ready(server, names, timeout=30):
    def all_ready():
        items = server.kubectl_json("get", "nodes")["items"]
        up = {n["metadata"]["name"] for n in items if any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))}
        return set(names) <= up
    wait_until("nodes " + ", ".join(names) + " Ready", all_ready, timeout)


def stop_process(proc, sig=None):
    if proc.poll() is None:
        if sig is None:
            proc.terminate()
        else:
            proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Watcher:
    """Watches one resource in a namespace through kubectl's JSON watch stream (one object per
    event, in the store's order) and calls on_event(type, obj) for each, on its own thread."""

    def __init__(self, server, ns, resource, on_event):
        import threading
        env = dict(os.environ, HOME=server.home, KUBECONFIG=server.kubeconfig)
        self.proc = subprocess.Popen(
            [conftest.KUBECTL, "get", resource, "-n", ns, "--watch", "--output-watch-events", "-o", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.on_event = on_event
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        decoder = json.JSONDecoder()
        buf = ""
        for line in iter(self.proc.stdout.readline, b""):
            buf += line.decode()
            while True:
                s = buf.lstrip()
                if not s:
                    buf = ""
                    break
                try:
                    ev, end = decoder.raw_decode(s)
                except ValueError:
                    break
                buf = s[end:]
                try:
                    self.on_event(ev["type"], ev["object"])
                except Exception as e:  # noqa: BLE001 - reported by the test
                    self.errors.append(repr(e))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(10)


# ---- rollouts ------------------------------------------------------------------------------------

def test_apply_then_rolling_update_keeps_surge_and_unavailability_bounds(server, sim_nodes, namespace):
    """Upstream: '[sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new
    ones [Conformance]' (its WaitForDeploymentCompleteAndCheckRolling checks the same bounds).

    With replicas 4, maxSurge 1 and maxUnavailable 1, throughout the rollout: the replica sets'
    spec.replicas never add up to more than 5, their availableReplicas never to less than 3, and
    never fewer than 3 of the pods are Ready and not terminating. (The number of pods that exist
    is not bounded at every instant: an old pod's deletion and a new pod's creation race in
    Kubernetes too.)"""
    import threading
    replicas, surge, unavailable = 4, 1, 1
    manifest = deployment_manifest("roll", replicas, "registry.local/roll:1", strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    r = server.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    assert "deployment.apps/roll created" in r.stdout
    r = server.kubectl("rollout", "status", "-n", namespace, "deployment/roll", "--timeout=60s")
    assert 'deployment "roll" successfully rolled out' in r.stdout

    lock = threading.Lock()
    rs_state, pod_state = {}, {}
    violations, seen = [], {"rs": 0, "pods": 0, "max_spec": 0, "min_available": replicas, "min_ready": replicas}
    armed = threading.Event()  # set once both watches have replayed the state before the rollout

    def on_rs(kind, rs):
        with lock:
            seen["rs"] += 1
            name = rs["metadata"]["name"]
            if kind == "DELETED":
                rs_state.pop(name, None)
            else:
                rs_state[name] = (rs["spec"].get("replicas", 0), rs.get("status", {}).get("availableReplicas", 0))
            spec = sum(s for s, _ in rs_state.values())
            available = sum(a for _, a in rs_state.values())
            if not armed.is_set():
                return
            seen["max_spec"] = max(seen["max_spec"], spec)
            seen["min_available"] = min(seen["min_available"], available)
            if spec > replicas + surge:
                violations.append(f"replica sets want {spec} pods: {rs_state}")
            if available < replicas - unavailable:
                violations.append(f"replica sets report {available} available: {rs_state}")

    def on_pod(kind, pod):
        with lock:
            seen["pods"] += 1
            uid = pod["metadata"]["uid"]
            if kind == "DELETED":
                pod_state.pop(uid, None)
            else:
                pod_state[uid] = ready(pod) and "deletionTimestamp" not in pod["metadata"]
            n = sum(pod_state.values())
            if not armed.is_set():
                return
            seen["min_ready"] = min(seen["min_ready"], n)
            if n < replicas - unavailable:
                violations.append(f"only {n} pods Ready and not terminating")

    watchers = [Watcher(server, namespace, "replicasets", on_rs), Watcher(server, namespace, "pods", on_pod)]
    try:
        # Both watches have delivered the initial state before the rollout starts.
        def replayed():
            with lock:
                return len(rs_state) == 1 and len(pod_state) == replicas and all(pod_state.values())
        wait_until("the watches' initial events", replayed, 30)
        armed.set()
        server.kubectl("set", "image", "-n", namespace, "deployment/roll", "main=registry.local/roll:2")
        server.kubectl("rollout", "status", "-n", namespace, "deployment/roll", "--timeout=90s")

        def settled():
            with lock:
                return (len(rs_state) == 2 and sorted(s for s, _ in rs_state.values()) == [0, replicas]
                        and len(pod_state) == replicas and all(pod_state.values()))
        wait_until("the old pods to be gone", settled, 60)
    finally:
        for w in watchers:
            w.stop()
    assert not violations, violations[:5]
    assert not any(w.errors for w in watchers), [w.errors for w in watchers]
    # The rollout did use its room: one pod over, one under.
    assert seen["max_spec"] == replicas + surge, seen
    assert seen["min_ready"] == replicas - unavailable, seen
    images = {p["spec"]["containers"][0]["image"] for p in live(pods(server, namespace, "app=roll"))}
    assert images == {"registry.local/roll:2"}


def test_rollout_pause_and_resume(server, sim_nodes, namespace):
    """Upstream: '[sig-apps] Deployment iterative rollouts should eventually progress' (pause/resume
    steps) and kubectl's 'rollout pause|resume'. A paused Deployment takes template changes without
    rolling them out; resuming rolls them out."""
    server.kubectl("create", "deployment", "p", "-n", namespace, "--image=registry.local/p:1", "--replicas=2")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/p", "--timeout=60s")
    r = server.kubectl("rollout", "pause", "-n", namespace, "deployment/p")
    assert "deployment.apps/p paused" in r.stdout
    server.kubectl("set", "image", "-n", namespace, "deployment/p", "p=registry.local/p:2")
    server.kubectl("set", "env", "-n", namespace, "deployment/p", "A=1")

    def progressing_paused():
        d = server.kubectl_json("get", "deploy", "-n", namespace, "p")
        cond = next((c for c in d["status"].get("conditions", []) if c["type"] == "Progressing"), {})
        return d["status"].get("observedGeneration") == d["metadata"]["generation"] and \
            cond.get("reason") == "DeploymentPaused" and d
    d = wait_until("the paused Deployment's status", progressing_paused, 30)
    assert d["spec"]["paused"] is True
    # Nothing rolled: one replica set, the old image on every pod.
    time.sleep(1)
    assert len(server.kubectl_json("get", "rs", "-n", namespace)["items"]) == 1
    assert {p["spec"]["containers"][0]["image"] for p in pods(server, namespace, "app=p")} == {"registry.local/p:1"}
    r = server.kubectl("rollout", "status", "-n", namespace, "deployment/p", "--timeout=2s", check=False)
    assert r.returncode != 0, r.stdout

    r = server.kubectl("rollout", "resume", "-n", namespace, "deployment/p")
    assert "deployment.apps/p resumed" in r.stdout
    server.kubectl("rollout", "status", "-n", namespace, "deployment/p", "--timeout=60s")
    ps = live(pods(server, namespace, "app=p"))
    assert {p["spec"]["containers"][0]["image"] for p in ps} == {"registry.local/p:2"}
    assert all({"name": "A", "value": "1"} in p["spec"]["containers"][0].get("env", []) for p in ps)
    # Both changes made while paused became one revision.
    rss = server.kubectl_json("get", "rs", "-n", namespace)["items"]
    assert sorted(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for r in rss) == ["1", "2"]


# ---- garbage collection of a Deployment's dependents ---------------------------------------------

def test_foreground_deletion_removes_dependents_before_the_deployment(server, sim_nodes, namespace):
    """Upstream: '[sig-api-machinery] Garbage collector should keep the rc around until all its pods
    are deleted if the deleteOptions says so [Conformance]', with a Deployment: the owner carries the
    foregroundDeletion finalizer and stays until its replica set and pods are gone."""
    server.kubectl("create", "deployment", "fg", "-n", namespace, "--image=registry.local/fg:1", "--replicas=3")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/fg", "--timeout=60s")
    server.kubectl("delete", "deployment", "fg", "-n", namespace, "--cascade=foreground", "--wait=false")
    r = server.kubectl("get", "deployment", "fg", "-n", namespace, "-o", "json", check=False)
    if r.returncode == 0:
        d = json.loads(r.stdout)
        assert "deletionTimestamp" in d["metadata"]
        assert "foregroundDeletion" in d["metadata"].get("finalizers", [])
    orders = []

    def gone():
        # The owner first: seeing it gone and then a dependent still there would be out of order.
        owner = server.kubectl("get", "deployment", "fg", "-n", namespace, "-o", "name", check=False).stdout.strip()
        left = server.kubectl("get", "rs,pods", "-n", namespace, "-l", "app=fg", "-o", "name").stdout.split()
        if not owner and left:
            orders.append(left)
        return not owner and not left
    wait_until("the Deployment and its dependents to be deleted", gone, 60, 0.1)
    assert not orders, f"dependents outlived the Deployment: {orders[0]}"


def test_orphan_deletion_keeps_replicaset_and_pods(server, sim_nodes, namespace):
    """Upstream: '[sig-api-machinery] Garbage collector should orphan RS created by deployment when
    deleteOptions.PropagationPolicy is Orphan [Conformance]'."""
    server.kubectl("create", "deployment", "or", "-n", namespace, "--image=registry.local/or:1", "--replicas=2")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/or", "--timeout=60s")
    rs_before = server.kubectl_json("get", "rs", "-n", namespace, "-l", "app=or")["items"]
    pods_before = {p["metadata"]["uid"] for p in pods(server, namespace, "app=or")}
    server.kubectl("delete", "deployment", "or", "-n", namespace, "--cascade=orphan", "--timeout=60s")
    assert server.kubectl("get", "deployment", "or", "-n", namespace, check=False).returncode != 0

    def released():
        rss = server.kubectl_json("get", "rs", "-n", namespace, "-l", "app=or")["items"]
        return len(rss) == 1 and not rss[0]["metadata"].get("ownerReferences") and rss
    rss = wait_until("the replica set to lose its ownerReference", released, 30)
    assert rss[0]["metadata"]["uid"] == rs_before[0]["metadata"]["uid"]
    assert "deletionTimestamp" not in rss[0]["metadata"]
    # The replica set still owns its pods and keeps them.
    time.sleep(1)
    ps = pods(server, namespace, "app=or")
    assert {p["metadata"]["uid"] for p in ps} == pods_before
    assert all("deletionTimestamp" not in p["metadata"] and
               p["metadata"]["ownerReferences"][0]["uid"] == rss[0]["metadata"]["uid"] for p in ps)


def test_namespace_deletion_deletes_its_pods(server, sim_nodes):
    """Upstream: '[sig-api-machinery] Namespaces [Serial] should ensure that all pods are removed when
    a namespace is deleted [Conformance]': a bare pod and a Deployment's pods, watched to their
    deletion before the namespace goes."""
    ns = "doomed-pods"
    server.kubectl("create", "namespace", ns)
    server.kubectl("create", "deployment", "d", "-n", ns, "--image=registry.local/d:1", "--replicas=2")
    server.kubectl("run", "bare", "-n", ns, "--image=registry.local/bare:1")
    server.kubectl("rollout", "status", "-n", ns, "deployment/d", "--timeout=60s")
    server.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/bare", "--timeout=60s")
    names = {p["metadata"]["name"] for p in server.kubectl_json("get", "pods", "-n", ns)["items"]}
    assert len(names) == 3
    deleted, listed = set(), set()

    def on_pod(kind, p):
        (deleted if kind == "DELETED" else listed).add(p["metadata"]["name"])
    w = Watcher(server, ns, "pods", on_pod)
    try:
        wait_until("the watch's initial events", lambda: names <= listed, 30)
        server.kubectl("delete", "namespace", ns, "--timeout=60s")
        wait_until("the pods' DELETED events", lambda: names <= deleted and (names, deleted), 10)
    finally:
        w.stop()
    assert server.kubectl("get", "namespace", ns, check=False).returncode != 0
    r = server.kubectl("get", "pods", "-A", "-o", "json")
    assert not [p for p in json.loads(r.stdout)["items"] if p["metadata"]["namespace"] == ns]


def test_cordon_keeps_new_pods_off_the_node(server, sim_nodes, namespace):
    """Upstream: '[sig-scheduling] SchedulerPredicates [Serial] validates that NodeUnschedulable is
    respected' (kubectl cordon sets spec.unschedulable)."""
    server.kubectl("cordon", "sim-1")
    try:
        node = server.kubectl_json("get", "node", "sim-1")
        assert node["spec"].get("unschedulable") is True
        assert {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"} in [
            {"key": t["key"], "effect": t["effect"]} for t in wait_until(
                "the unschedulable taint", lambda: server.kubectl_json("get", "node", "sim-1")["spec"].get("taints"), 15)]
        server.kubectl("create", "deployment", "c", "-n", namespace, "--image=registry.local/c:1", "--replicas=6")
        server.kubectl("rollout", "status", "-n", namespace, "deployment/c", "--timeout=60s")
        on = {p["spec"]["nodeName"] for p in pods(server, namespace, "app=c")}
        assert on and "sim-1" not in on
    finally:
        server.kubectl("uncordon", "sim-1")


# ---- nodes that stop -----------------------------------------------------------------------------

def test_stopped_node_pods_recreated_elsewhere(tmp_path):
    """Upstream: '[sig-apps] Network Partition [Disruptive] [Slow] Pods should be evicted from unready
    Node [Feature:TaintEviction] All pods on the unreachable node should be marked as NotReady upon
    the node turn NotReady AND all pods should be evicted after eviction timeout passes'.

    A server with a 3 s node monitor grace period (--node-monitor-grace-period; Kubernetes' default
    is 50 s) and pods that tolerate the unreachable taint for 2 s instead of the 300 s the API
    server's admission gives them: the node's agent is killed, the node becomes Ready=Unknown and
    tainted unreachable, its pods are evicted and the replica set recreates them on the other node."""
    import signal
    s = conftest.Server(str(tmp_path), ["--node-monitor-grace-period", "3s", "--node-monitor-period", "500ms"]).start()
    stay = going = None
    try:
        # The agents post node status every second (the kubelet's nodeStatusReportFrequency) as
        # their leases are renewed only every 10 s, longer than the grace period.
        stay = start_sim_agent(s, 1, "stay-", ["--status-report-frequency", "1"])
        going = start_sim_agent(s, 1, "going-", ["--status-report-frequency", "1"])
        wait_nodes_ready(s, ["stay-0", "going-0"])
        s.kubectl("cordon", "stay-0")
        tolerations = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}
                       for k in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]
        manifest = deployment_manifest("moved", 2, "registry.local/moved:1")
        manifest["spec"]["template"]["spec"]["tolerations"] = tolerations
        s.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        s.kubectl("rollout", "status", "deployment/moved", "--timeout=60s")
        first = s.kubectl_json("get", "pods", "-l", "app=moved")["items"]
        assert {p["spec"]["nodeName"] for p in first} == {"going-0"}
        assert all(p["spec"]["tolerations"] == tolerations for p in first), first[0]["spec"]["tolerations"]
        s.kubectl("uncordon", "stay-0")

        stop_process(going, signal.SIGKILL)

        def unreachable():
            n = s.kubectl_json("get", "node", "going-0")
            ready_cond = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
            taints = {(t["key"], t["effect"]) for t in n["spec"].get("taints", [])}
            return ready_cond["status"] == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in taints
        wait_until("going-0 to become Ready=Unknown and tainted unreachable", unreachable, 30)

        def replaced():
            ps = live(s.kubectl_json("get", "pods", "-l", "app=moved")["items"])
            return len(ps) == 2 and all(p["spec"].get("nodeName") == "stay-0" and ready(p) for p in ps) and ps
        ps = wait_until("the pods to be recreated on stay-0", replaced, 60)
        assert not {p["metadata"]["uid"] for p in ps} & {p["metadata"]["uid"] for p in first}
        evicted = s.kubectl_json("get", "pods", "-l", "app=moved")["items"]
        # The old pods were deleted (they stay Terminating while their node cannot confirm).
        for p in evicted:
            if p["metadata"]["uid"] in {q["metadata"]["uid"] for q in first}:
                assert "deletionTimestamp" in p["metadata"]
        r = s.kubectl("rollout", "status", "deployment/moved", "--timeout=30s")
        assert "successfully rolled out" in r.stdout
        stay_node = s.kubectl_json("get", "node", "stay-0")
        assert next(c for c in stay_node["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"
    finally:
        for a in (stay, going):
            if a:
                stop_process(a)
        s.stop()


# ---- leader election between controller processes ------------------------------------------------

def test_two_controller_processes_one_leads_the_other_takes_over(tmp_path):
    """Two `berth controllers --kubeconfig` processes against one server that runs none itself: only
    the holder of the kube-system/berth-controller-manager Lease runs the controllers; when it stops
    it releases the Lease and the other takes over. (client-go's leaderelection; Kubernetes has no
    e2e test of its own for this.)"""
    import re
    s = conftest.Server(str(tmp_path), ["--no-controllers"]).start()
    procs, logs = {}, {}
    agent = None

    def start_controllers(name):
        logs[name] = os.path.join(str(tmp_path), f"controllers-{name}.log")
        procs[name] = subprocess.Popen(
            [conftest.BERTH, "controllers", "--kubeconfig", s.kubeconfig, "--leader-elect-lease-duration", "4s",
             "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms"],
            stdout=open(logs[name], "wb"), stderr=subprocess.STDOUT)

    def identity(name):
        with open(logs[name], errors="replace") as f:
            m = re.search(r"successfully acquired lease kube-system/berth-controller-manager as (\S+)", f.read())
        return m.group(1) if m else None

    def holder():
        r = s.kubectl("get", "lease", "-n", "kube-system", "berth-controller-manager", "-o", "json", check=False)
        return json.loads(r.stdout)["spec"].get("holderIdentity") if r.returncode == 0 else None

    try:
        agent = start_sim_agent(s, 2, "le-")
        wait_nodes_ready(s, ["le-0", "le-1"])
        start_controllers("a")
        wait_until("the first process to lead", lambda: identity("a"), 30)
        start_controllers("b")
        time.sleep(2)  # several retry periods: b tries and must not get the lease
        assert holder() == identity("a")
        assert identity("b") is None, "both processes lead"
        # The leader acts, and only it: one replica set, exactly the replicas asked for.
        s.kubectl("create", "deployment", "one", "--image=registry.local/one:1", "--replicas=3")
        s.kubectl("rollout", "status", "deployment/one", "--timeout=60s")
        assert len(s.kubectl_json("get", "rs", "-l", "app=one")["items"]) == 1
        assert len(s.kubectl_json("get", "pods", "-l", "app=one")["items"]) == 3
        assert identity("b") is None

        stop_process(procs["a"])  # SIGTERM: stops its controllers and releases the lease
        assert procs["a"].returncode == 0
        # Released before it exited (holder emptied, or already the other's), not left to expire.
        assert holder() != identity("a")
        wait_until("the second process to take over", lambda: identity("b"), 20)
        assert identity("b") != identity("a")
        wait_until("the lease to name the new leader", lambda: holder() == identity("b"), 10)
        s.kubectl("create", "deployment", "two", "--image=registry.local/two:1", "--replicas=2")
        s.kubectl("rollout", "status", "deployment/two", "--timeout=60s")
        s.kubectl("scale", "deployment/one", "--replicas=1")
        wait_until("the new leader to scale down", lambda: len(
            live(s.kubectl_json("get", "pods", "-l", "app=one")["items"])) == 1, 30)
    finally:
        for p in procs.values():
            stop_process(p)
        if agent:
            stop_process(agent)
        s.stop()


# ---- pod garbage collection ----------------------------------------------------------------------

def test_pod_gc_deletes_orphans_and_terminated_pods_beyond_threshold(tmp_path):
    """kube-controller-manager's PodGC. Upstream: '[sig-node] Pod garbage collector
    [Feature:PodGarbageCollector] [Slow] should handle the creation of 1000 pods' (the terminated
    threshold) and the integration test TestPodGcOrphanedPodsWithFinalizer (orphans). A server with
    --terminated-pod-gc-threshold 2 and Berth's --pod-gc-period / --pod-gc-quarantine shortened
    (Kubernetes: 20 s and 40 s, fixed)."""
    s = conftest.Server(str(tmp_path), ["--terminated-pod-gc-threshold", "2", "--pod-gc-period", "300ms",
                                        "--pod-gc-quarantine", "1s"]).start()
    try:
        # A node object with no agent behind it: nothing runs or finishes its pods but us.
        s.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node",
                                                          "metadata": {"name": "idle"}}))

        def pod(name, node):
            return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                    "spec": {"nodeName": node, "containers": [{"name": "c", "image": "registry.local/x:1"}]}}
        events = []
        w = Watcher(s, "default", "pods", lambda kind, p: events.append((kind, p)))
        try:
            for i in range(4):
                s.kubectl("create", "-f", "-", input=json.dumps(pod(f"done-{i}", "idle")))
            s.kubectl("create", "-f", "-", input=json.dumps(pod("running", "idle")))
            s.kubectl("create", "-f", "-", input=json.dumps(pod("lost", "ghost")))
            for i in range(4):
                s.kubectl("patch", "pod", f"done-{i}", "--subresource=status", "--type=merge",
                          "-p", json.dumps({"status": {"phase": "Succeeded"}}))

            def names():
                return sorted(p["metadata"]["name"] for p in s.kubectl_json("get", "pods")["items"])
            # The two oldest terminated pods go; the orphan goes after its node's quarantine.
            wait_until("pod GC", lambda: names() == ["done-2", "done-3", "running"], 30)
            time.sleep(1)  # and nothing else goes
            assert names() == ["done-2", "done-3", "running"]
            wait_until("the orphan's DELETED event", lambda: any(
                k == "DELETED" and p["metadata"]["name"] == "lost" for k, p in events), 10)
        finally:
            w.stop()
        # The orphan was marked Failed with DisruptionTarget before it was deleted.
        last = [p for k, p in events if p["metadata"]["name"] == "lost" and k == "DELETED"][0]
        assert last["status"]["phase"] == "Failed"
        cond = next(c for c in last["status"]["conditions"] if c["type"] == "DisruptionTarget")
        assert (cond["status"], cond["reason"], cond["message"]) == (
            "True", "DeletionByPodGC", "PodGC: node no longer exists")
        # The terminated ones kept their phase.
        assert all(p["status"]["phase"] == "Succeeded" for k, p in events
                   if k == "DELETED" and p["metadata"]["name"].startswith("done-"))
    finally:
        s.stop()
