#!/usr/bin/python3
"""Pod startup latency on one real node, and the node agent's memory.

Starts `berth server` and a separate `berth agent` (runc or crun) on loopback with fresh data
directories, creates 100 pods of the built-in busybox image at once, and times each pod from
its create call to the first watch event that shows it Ready. Prints `name: value unit` lines.
Run as root:  bench/pod_startup_bench.py [build/berth] [runc|crun]
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

BERTH = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/berth")
RUNTIME = sys.argv[2] if len(sys.argv) > 2 else "runc"
PODS = 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
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
            [BERTH, "agent", "--server", url, "--token-file", f"{work}/server/node-token",
             "--ca-file", f"{work}/server/pki/ca.crt", "--ca-key-file", f"{work}/server/pki/ca.key",
             "--node-name", "bench-node", "--node-ip", "127.0.0.1", "--data-dir", f"{work}/agent",
             "--runtime", RUNTIME, "--listen", f"127.0.0.1:{agent_port}", "--pod-cidr", "10.79.0.0/24",
             "--bridge", "berthbench0", "--builtin-image"],
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
        print(f"agent_rss_idle: {rss_kb(agent.pid) / 1024:.1f} MB")

        ready_at, created_at = {}, {}
        done = threading.Event()

        def watcher():
            for e in watch.Watch().stream(api.list_namespaced_pod, "default", timeout_seconds=180):
                p = e["object"]
                if any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])):
                    ready_at.setdefault(p.metadata.name, time.monotonic())
                    if len(ready_at) == PODS:
                        done.set()
                        return

        t = threading.Thread(target=watcher, daemon=True)
        t.start()
        time.sleep(0.5)

        def create(i):
            name = f"p{i:03d}"
            body = {"metadata": {"name": name}, "spec": {"nodeName": "bench-node", "containers": [
                {"name": "c", "image": "berth.local/busybox:1", "command": ["sleep", "3600"]}]}}
            created_at[name] = time.monotonic()
            api.create_namespaced_pod("default", body)

        start = time.monotonic()
        creators = [threading.Thread(target=lambda k=k: [create(i) for i in range(k, PODS, 8)]) for k in range(8)]
        for c in creators:
            c.start()
        for c in creators:
            c.join()
        done.wait(180)
        lat = sorted((ready_at[n] - created_at[n]) * 1000 for n in ready_at if n in created_at)
        if len(lat) < PODS:
            print(f"pod_bench: only {len(lat)} of {PODS} pods became Ready", file=sys.stderr)
        if lat:
            print(f"pod_startup_{RUNTIME}_p50: {lat[len(lat) // 2]:.0f} ms")
            print(f"pod_startup_{RUNTIME}_p99: {lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.0f} ms")
            print(f"pod_startup_{RUNTIME}_all_{PODS}_ready: {(max(ready_at.values()) - start):.2f} s")
        print(f"agent_rss_{PODS}_pods: {rss_kb(agent.pid) / 1024:.1f} MB")
        api.delete_collection_namespaced_pod("default", grace_period_seconds=0)
        for _ in range(300):
            if not api.list_namespaced_pod("default").items:
                break
            time.sleep(0.2)
    finally:
        for p in (agent, server):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(40)
                except subprocess.TimeoutExpired:
                    p.kill()
        subprocess.run(["ip", "link", "del", "berthbench0"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
