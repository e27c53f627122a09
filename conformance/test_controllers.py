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
    """Background propagation: the garbage collector removes the replica set and its pods."""
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
    server.kubectl("create", "deployment", "dr", "-n", namespace, "--image=registry.local/dr:1", "--replicas=3")
    server.kubectl("rollout", "status", "-n", namespace, "deployment/dr", "--timeout=60s")
    node = "sim-0"
    server.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s")
    deadline = time.time() + 60
    while time.time() < deadline:
        live = [p for p in pods(server, namespace, "app=dr") if "deletionTimestamp" not in p["metadata"]]
        if len(live) == 3 and all(p["spec"].get("nodeName") not in (None, node) for p in live):
            break
        time.sleep(0.3)
    else:
        pytest.fail("drained pods were not recreated on other nodes")
    server.kubectl("uncordon", node)
