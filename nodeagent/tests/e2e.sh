#!/bin/sh
# End-to-end check of `berth agent` on this machine (root, Debian 12): a real server, a real agent,
# busybox pods through runc (and crun), a local registry. Run by hand:
#   nodeagent/tests/e2e.sh                      # uses build/berth for server and agent
#   BERTH_AGENT="build/berth agent" RUNTIME=crun nodeagent/tests/e2e.sh
# Prints one line per check and ends with "N passed, M failed".
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTH=${BERTH:-$ROOT/build/berth}
BERTH_AGENT=${BERTH_AGENT:-"$BERTH agent"}
RUNTIME=${RUNTIME:-runc}
PORT=${PORT:-17643}
AGENT_PORT=${AGENT_PORT:-10350}
WORK=${WORK:-$(mktemp -d /tmp/berth-e2e-XXXXXX)}
REGISTRY=127.0.0.1:5000
BRIDGE=${BRIDGE:-berthe2e0}
POD_CIDR=${POD_CIDR:-10.77.0.0/24}
NODE=e2e-node
PASS=0
FAIL=0

check() {  # check NAME COMMAND...
  name=$1
  shift
  if "$@" >"$WORK/check.out" 2>&1; then
    PASS=$((PASS + 1))
    echo "ok   $name"
  else
    FAIL=$((FAIL + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$WORK/check.out" | tail -15
  fi
}

wait_for() {  # wait_for SECONDS COMMAND...
  n=$1
  shift
  while [ "$n" -gt 0 ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
    n=$((n - 1))
  done
  "$@"
}

need() {
  missing=""
  for p in runc crun busybox-static umoci skopeo docker-registry containernetworking-plugins curl iproute2; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "installing:$missing"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends $missing >/dev/null
  fi
}

cleanup() {
  [ -n "${AGENT_PID:-}" ] && kill "$AGENT_PID" 2>/dev/null
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null
  [ -n "${REGISTRY_PID:-}" ] && kill "$REGISTRY_PID" 2>/dev/null
  wait 2>/dev/null
  ip link del "$BRIDGE" 2>/dev/null
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "run as root"; exit 1; }
mkdir -p "$WORK"
echo "work directory: $WORK"
need

# ---- the image: busybox-static in an OCI layout, pushed to a local registry ----
if ! curl -sf "http://$REGISTRY/v2/busybox/manifests/1" -H 'Accept: application/vnd.oci.image.manifest.v1+json' >/dev/null; then
  if ! curl -sf "http://$REGISTRY/v2/" >/dev/null; then
    mkdir -p "$WORK/registry"
    printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: %s\n' "$WORK" "$REGISTRY" >"$WORK/registry.yml"
    docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
    REGISTRY_PID=$!
    wait_for 10 curl -sf "http://$REGISTRY/v2/"
  fi
  (
    cd "$WORK" && mkdir -p img/rootfs/bin img/rootfs/etc && cd img &&
      cp /bin/busybox rootfs/bin/busybox &&
      for a in $(rootfs/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "rootfs/bin/$a"; done &&
      printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >rootfs/etc/passwd &&
      printf 'root:x:0:\nnobody:x:65534:\n' >rootfs/etc/group &&
      umoci init --layout oci && umoci new --image oci:1 && umoci unpack --image oci:1 b &&
      cp -a rootfs/. b/rootfs/ && umoci repack --image oci:1 b && umoci config --image oci:1 --config.cmd sh &&
      skopeo copy oci:oci:1 "docker://$REGISTRY/busybox:1" --dest-tls-verify=false
  ) >"$WORK/image.log" 2>&1 || { echo "could not build the busybox image (see $WORK/image.log)"; exit 1; }
fi

# ---- server and agent ----
"$BERTH" server --data-dir "$WORK/server" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_for 20 test -s "$WORK/server/kubeconfig" || { echo "the server did not start:"; cat "$WORK/server.log"; exit 1; }
export KUBECONFIG="$WORK/server/kubeconfig"
wait_for 20 kubectl get ns default >/dev/null || { echo "the server does not answer"; exit 1; }
$BERTH_AGENT --server "https://127.0.0.1:$PORT" --token-file "$WORK/server/node-token" \
  --ca-file "$WORK/server/pki/ca.crt" --ca-key-file "$WORK/server/pki/ca.key" --node-name "$NODE" \
  --data-dir "$WORK/agent" --runtime "$RUNTIME" --insecure-registry "$REGISTRY" \
  --listen "127.0.0.1:$AGENT_PORT" --node-ip 127.0.0.1 --pod-cidr "$POD_CIDR" --bridge "$BRIDGE" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!

PKI="$WORK/server/pki"
endpoint() { curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/apiserver-client.crt" --key "$PKI/apiserver-client.key" "https://127.0.0.1:$AGENT_PORT$1"; }
node_ready() { kubectl get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True; }
phase_is() { kubectl get pod "$1" -o jsonpath='{.status.phase}' | grep -qx "$2"; }
lease_fresh() {
  t=$(kubectl get lease -n kube-node-lease "$NODE" -o jsonpath='{.spec.renewTime}')
  [ -n "$t" ] && [ $(( $(date +%s) - $(date -d "$t" +%s) )) -le 15 ]
}

check "node registers and is Ready" wait_for 30 node_ready
runtime_reported() { kubectl get node "$NODE" -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}' | grep -q "^$RUNTIME://"; }
check "node reports its runtime" runtime_reported
check "lease renewed within 15s" wait_for 15 lease_fresh

cat <<EOF | kubectl apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: e2e-hello}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 3
  containers:
  - name: main
    image: $REGISTRY/busybox:1
    command: ["sh", "-c", "echo hello from \$(POD); while true; do sleep 1; done"]
    env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    resources: {limits: {memory: 64Mi, cpu: 100m}}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-crash}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: $REGISTRY/busybox:1, command: ["sh", "-c", "exit 3"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-done}
spec:
  nodeName: $NODE
  restartPolicy: Never
  containers: [{name: main, image: $REGISTRY/busybox:1, command: ["sh", "-c", "echo done > /dev/termination-log"]}]
EOF
check "pod runs" wait_for 60 phase_is e2e-hello Running
pod_ip_in_cidr() { kubectl get pod e2e-hello -o jsonpath='{.status.podIP}' | grep -q '^10\.77\.0\.'; }
check "pod gets an IP from the pod CIDR" pod_ip_in_cidr
logs_show_hello() { endpoint /containerLogs/default/e2e-hello/main | grep -qx 'hello from e2e-hello'; }
anonymous_refused() { ! curl -sfk "https://127.0.0.1:$AGENT_PORT/stats/summary"; }
summary_lists_pod() { endpoint /stats/summary | grep -q '"name":"e2e-hello"'; }
crash_looping() { kubectl get pod e2e-crash -o jsonpath='{.status.containerStatuses[0].state.waiting.reason}' | grep -qx CrashLoopBackOff; }
completed_with_message() {
  phase_is e2e-done Succeeded &&
    kubectl get pod e2e-done -o jsonpath='{.status.containerStatuses[0].state.terminated.message}' | grep -q done
}
check "container logs through the agent endpoint" wait_for 10 logs_show_hello
api_logs_show_hello() { kubectl logs e2e-hello | grep -qx 'hello from e2e-hello'; }
api_follow_shows_hello() { timeout 5 kubectl logs -f e2e-hello | grep -qx -m1 'hello from e2e-hello'; }
check "kubectl logs through the API server" wait_for 10 api_logs_show_hello
check "kubectl logs -f streams through the API server" api_follow_shows_hello
check "endpoint refuses clients without the API server's certificate" anonymous_refused
check "stats summary lists the pod" summary_lists_pod
check "a crashing container goes to CrashLoopBackOff" wait_for 30 crash_looping
check "restartPolicy Never completes with the termination message" wait_for 30 completed_with_message

# Restart the agent: the running container is adopted, not started again.
CID=$(kubectl get pod e2e-hello -o jsonpath='{.status.containerStatuses[0].containerID}')
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
$BERTH_AGENT --server "https://127.0.0.1:$PORT" --token-file "$WORK/server/node-token" \
  --ca-file "$WORK/server/pki/ca.crt" --ca-key-file "$WORK/server/pki/ca.key" --node-name "$NODE" \
  --data-dir "$WORK/agent" --runtime "$RUNTIME" --insecure-registry "$REGISTRY" \
  --listen "127.0.0.1:$AGENT_PORT" --node-ip 127.0.0.1 --pod-cidr "$POD_CIDR" --bridge "$BRIDGE" >>"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
sleep 5
adopted() {
  [ "$(kubectl get pod e2e-hello -o jsonpath='{.status.containerStatuses[0].containerID}')" = "$CID" ] &&
    [ "$(kubectl get pod e2e-hello -o jsonpath='{.status.containerStatuses[0].restartCount}')" = 0 ] &&
    phase_is e2e-hello Running
}
check "agent restart re-adopts the running container" adopted

# The whole slice: the deployment controller, the replica set controller and the scheduler
# put the pods on this node; the agent runs them.
kubectl create deployment e2e-web --image="$REGISTRY/busybox:1" --replicas=2 -- sleep 3600 >/dev/null
check "a deployment rolls out on the node" kubectl rollout status deployment/e2e-web --timeout=90s
kubectl delete deployment e2e-web --wait=true --timeout=60s >/dev/null 2>&1
web_pods_gone() { [ -z "$(kubectl get pods -l app=e2e-web -o name)" ]; }
check "deleting the deployment removes its pods" wait_for 60 web_pods_gone

UIDS=$(kubectl get pod e2e-hello e2e-crash e2e-done -o jsonpath='{.items[*].metadata.uid}')
kubectl delete pod e2e-hello e2e-crash e2e-done --wait=true --timeout=60s >/dev/null 2>&1
pods_gone() { ! kubectl get pod e2e-hello e2e-crash e2e-done 2>/dev/null | grep -q e2e; }
no_netns() { for u in $UIDS; do ! ip netns list | grep -q "berth-$u" || return 1; done; }
no_veth_on_bridge() { [ -z "$(ip -o link show master "$BRIDGE" 2>/dev/null)" ]; }
no_process() { ! pgrep -f "__shim .*$WORK/agent" >/dev/null; }
no_mount() { ! grep -q "$WORK/agent" /proc/self/mountinfo; }
no_cgroup() { for u in $UIDS; do ! find /sys/fs/cgroup -maxdepth 6 -path '*berth/kubepods*' -name "pod$u" | grep -q . || return 1; done; }
check "deleted pods are gone from the API" wait_for 30 pods_gone
sleep 1
check "no network namespace left" no_netns
check "no veth left on the bridge" no_veth_on_bridge
check "no container process left" no_process
check "no mount left" no_mount
check "no pod cgroup left" no_cgroup

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
