#!/usr/bin/python3
"""Pod startup latency on one real node, and the node agent's memory.

For each runtime, starts `berth server` and a separate `berth agent` on loopback with fresh data
directories and times each pod of the built-in busybox image from its create call to the first
watch event that shows it Ready (what Kubernetes' pod startup SLO measures), in three modes:
  burst   all pods created at once (8 client threads);
  serial  one pod after another, each created once the previous one is Ready;
  rate    created at a steady rate (BENCH_RATE pods/s, 10 by default), as the SLO's density
          test does, without waiting for readiness.
Between modes every pod is deleted and the agent's containers are gone before the next starts.
Prints `name: value unit` lines.
Run as root:  bench/pod_startup_bench.py [build/berth] [runc|crun|both]
Environment: BENCH_PODS (100), BENCH_MODES ("burst serial rate"), BENCH_RATE (10),
BENCH_KEEP=1 keeps the work directory (logs) and prints where it is, BENCH_AGENT=berth|berth-agent
picks the agent's executable (default: berth-agent when it sits beside berth, as on a node).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BERTH = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/berth")
RUNTIMES = ["runc", "crun"] if (sys.argv[2] if len(sys.argv) > 2 else "both") == "both" else [sys.argv[2]]
PODS = int(os.environ.get("BENCH_PODS", "100"))
MODES = os.environ.get("BENCH_MODES", "burst serial rate").split()
RATE = float(os.environ.get("BENCH_RATE", "10"))
KEEP = os.environ.get("BENCH_KEEP") == "1"
BRIDGE, POD_CIDR = "berthbench0", "10.93.0.0/24"  # not used by the e2e tests or other benchmarks
LEAN = os.path.join(os.path.dirname(BERTH), "berth-agent")
AGENT = os.environ.get("BENCH_AGENT", "berth-agent" if os.access(LEAN, os.X_OK) else "berth")
AGENT_CMD = [LEAN] if AGENT == "berth-agent" else [BERTH, "agent"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def print_rss(label, pid):
    # RSS as the issue states it; RssAnon is the agent's own memory (the rest is shared libraries
    # and the executable, mostly shared with other processes).
    print(f"agent_rss_{label}: {rss_kb(pid) / 1024:.1f} MB")
    print(f"agent_rss_anon_{label}: {rss_kb(pid, 'RssAnon') / 1024:.1f} MB")


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


class ReadyWatch:
    """One watch over the namespace for the whole run: the first time each pod shows Ready."""

    def __init__(self, api, watch):
        self.ready_at = {}
        self.cv = threading.Condition()
        self.api, self.watch = api, watch
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                for e in self.watch.Watch().stream(self.api.list_namespaced_pod, "default", timeout_seconds=3600):
                    p = e["object"]
                    if any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])):
                        with self.cv:
                            if p.metadata.name not in self.ready_at:
                                self.ready_at[p.metadata.name] = time.monotonic()
                                self.cv.notify_all()
            except Exception:
                time.sleep(0.1)

    def wait(self, names, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not all(n in self.ready_at for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(left)
        return True


def pod_body(name):
    # A short grace period only so that the deletions between modes are quick (`sleep` as PID 1
    # ignores SIGTERM); it plays no part in start-up.
    return {"metadata": {"name": name}, "spec": {"nodeName": "bench-node", "terminationGracePeriodSeconds": 1, "containers": [
        {"name": "c", "image": "berth.local/busybox:1", "command": ["sleep", "3600"]}]}}


def run_mode(api, ready, mode, runtime):
    prefix = {"burst": "b", "serial": "s", "rate": "r"}[mode]
    names = [f"{prefix}{i:03d}" for i in range(PODS)]
    created_at = {}

    def create(name):
        created_at[name] = time.monotonic()
        api.create_namespaced_pod("default", pod_body(name))

    start = time.monotonic()
    if mode == "burst":
        creators = [threading.Thread(target=lambda k=k: [create(n) for n in names[k::8]]) for k in range(8)]
        for c in creators:
            c.start()
        for c in creators:
            c.join()
        ready.wait(names, 300)
    elif mode == "serial":
        for n in names:
            create(n)
            if not ready.wait([n], 60):
                break
    else:
        for i, n in enumerate(names):
            delay = start + i / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            create(n)
        ready.wait(names, 300)
    lat = sorted((ready.ready_at[n] - created_at[n]) * 1000 for n in names if n in ready.ready_at and n in created_at)
    label = f"pod_startup_{runtime}_{mode}" + (f"_{RATE:g}_per_s" if mode == "rate" else "")
    if len(lat) < PODS:
        print(f"pod_bench: {mode}: only {len(lat)} of {PODS} pods became Ready", file=sys.stderr)
    if lat:
        print(f"{label}_p50: {pct(lat, 0.50):.0f} ms")
        print(f"{label}_p90: {pct(lat, 0.90):.0f} ms")
        print(f"{label}_p99: {pct(lat, 0.99):.0f} ms")
        print(f"{label}_all_{PODS}_ready: {(max(ready.ready_at[n] for n in names if n in ready.ready_at) - start):.2f} s")
    sys.stdout.flush()


def delete_all(api, agent_dir):
    api.delete_collection_namespaced_pod("default", grace_period_seconds=0)

    def left(d):
        try:
            return os.listdir(f"{agent_dir}/{d}")
        except FileNotFoundError:
            return []
    # The agent is done when its containers and its pods' networks are gone.
    for _ in range(600):
        if not left("containers") and not left("cni/sandboxes") and not api.list_namespaced_pod("default").items:
            return
        time.sleep(0.2)


def bench(runtime):
    from kubernetes import client, config, watch

    work = tempfile.mkdtemp(prefix="berth-pod-bench-")
    port, agent_port = free_port(), free_port()
    url = f"https://127.0.0.1:{port}"
    server = subprocess.Popen([BERTH, "server", "--data-dir", f"{work}/server", "--listen", f"127.0.0.1:{port}"],
                              stdout=open(f"{work}/server.log", "wb"), stderr=subprocess.STDOUT)
    agent = None
    try:
        kubeconfig = f"{work}/server/kubeconfig"
        for _ in range(200):
            if os.path.exists(kubeconfig):
                break
            time.sleep(0.05)
        agent = subprocess.Popen(
            AGENT_CMD + ["--server", url, "--token-file", f"{work}/server/node-token",
             "--ca-file", f"{work}/server/pki/ca.crt", "--ca-key-file", f"{work}/server/pki/ca.key",
             "--node-name", "bench-node", "--node-ip", "127.0.0.1", "--data-dir", f"{work}/agent",
             "--runtime", runtime, "--listen", f"127.0.0.1:{agent_port}", "--pod-cidr", POD_CIDR,
             "--bridge", BRIDGE, "--builtin-image"],
            stdout=open(f"{work}/agent.log", "wb"), stderr=subprocess.STDOUT)
        api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
        for _ in range(300):
            try:
                node = api.read_node("bench-node")
                if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
                    break
            except Exception:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the node did not become Ready; see " + work)
        time.sleep(3)
        print(f"pod_bench: {runtime}: agent {' '.join(AGENT_CMD)}", file=sys.stderr)
        print_rss(f"idle_{runtime}", agent.pid)
        ready = ReadyWatch(api, watch)
        time.sleep(0.5)
        for mode in MODES:
            run_mode(api, ready, mode, runtime)
            if mode == "burst":
                print_rss(f"{PODS}_pods_{runtime}", agent.pid)
            delete_all(api, f"{work}/agent")
        time.sleep(12)  # the agent returns its finished pods' memory on its next 10 s housekeeping pass
        print_rss(f"after_pods_deleted_{runtime}", agent.pid)
        sys.stdout.flush()
    finally:
        for p in (agent, server):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(40)
                except subprocess.TimeoutExpired:
                    p.kill()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        if KEEP:
            print(f"pod_bench: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main():
    for runtime in RUNTIMES:
        bench(runtime)


if __name__ == "__main__":
    main()
