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
pod_ip_in_cidr() { kubectl get pod e2e-hello -o jsonpath='{.status.podIP}' | grep -qF "${POD_CIDR%.*/*}."; }
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
# kubectl exec: a WebSocket (v5.channel.k8s.io) through the API server to the agent, which runs
# the command with the runtime's exec; the Python client speaks v4.channel.k8s.io.
exec_echo() { [ "$(timeout 20 kubectl exec e2e-hello -- echo hello)" = hello ]; }
exec_exit_code() {
  timeout 20 kubectl exec e2e-hello -- sh -c 'exit 3' >"$WORK/exec.out" 2>&1
  rc=$?
  cat "$WORK/exec.out"
  [ "$rc" = 3 ] && grep -qx 'command terminated with exit code 3' "$WORK/exec.out"
}
exec_stdin() { [ "$(echo data | timeout 20 kubectl exec -i e2e-hello -- cat)" = data ]; }
exec_stderr() {
  timeout 20 kubectl exec e2e-hello -- sh -c 'echo out; echo err >&2' >"$WORK/exec.stdout" 2>"$WORK/exec.stderr"
  cat "$WORK/exec.stdout" "$WORK/exec.stderr"
  [ "$(cat "$WORK/exec.stdout")" = out ] && [ "$(cat "$WORK/exec.stderr")" = err ]
}
exec_bad_container() {
  timeout 20 kubectl exec e2e-hello -c nosuch -- true 2>"$WORK/exec.err"
  rc=$?
  cat "$WORK/exec.err"
  [ "$rc" = 1 ] && grep -qx 'Error from server (BadRequest): container nosuch is not valid for pod e2e-hello' "$WORK/exec.err"
}
exec_not_running() {  # e2e-crash's container exits at once and waits to restart
  timeout 20 kubectl exec e2e-crash -- sleep 5 2>"$WORK/exec.err"
  rc=$?
  cat "$WORK/exec.err"
  [ "$rc" = 1 ] && grep -qx 'error: Internal error occurred: unable to upgrade connection: container not found ("main")' "$WORK/exec.err"
}
# script gives kubectl a terminal, of a size the container's terminal must take (script's own
# end-of-input NUL may show, echoed, anywhere in the output).
exec_tty_once() {
  timeout 20 script -eqc "stty cols 101 rows 31; kubectl exec -it e2e-hello -- sh -c 'tty; stty size; exit 4'" /dev/null \
    </dev/null >"$WORK/exec.tty" 2>&1
  rc=$?
  cat "$WORK/exec.tty"
  [ "$rc" = 4 ] && grep -q '/dev/pts/[0-9]' "$WORK/exec.tty" && grep -q '31 101' "$WORK/exec.tty"
}
# About one run in ten under runc, the first stty in the container fails with "standard
# input: No child processes": runc's own exec -t console does it (see NOTES.md), so the check
# gets three tries.
exec_tty() {
  for attempt in 1 2 3; do
    exec_tty_once && return 0
  done
  return 1
}
exec_python() {
  timeout 30 /usr/bin/python3 - "$KUBECONFIG" <<'PY'
import sys
from kubernetes import client, config
from kubernetes.stream import stream
config.load_kube_config(sys.argv[1])
core = client.CoreV1Api()
out = stream(core.connect_get_namespaced_pod_exec, "e2e-hello", "default", command=["sh", "-c", "echo from python"],
             stderr=True, stdin=False, stdout=True, tty=False)
print(repr(out))
assert out.strip() == "from python", out
PY
}
check "kubectl exec runs a command in the container" exec_echo
check "kubectl exec returns the command's exit code" exec_exit_code
check "kubectl exec -i passes stdin and ends at its end" exec_stdin
check "kubectl exec keeps stdout and stderr apart" exec_stderr
check "kubectl exec -c of an unknown container is refused" exec_bad_container
check "kubectl exec into a container that is not running fails" exec_not_running
check "kubectl exec -it gives the command a terminal" exec_tty
check "the Python client's exec (v4.channel.k8s.io) gets the output" exec_python
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

# ---- the rest of the kubelet's behaviour (issue #4): probes, back-off, OOM, graceful deletion,
# image errors, imported images, activeDeadlineSeconds and admission. The pods are made at once
# and checked in turn, so the waits overlap.
HOSTDIR="$WORK/hostdir"
mkdir -p "$HOSTDIR"
# An OCI archive of the busybox image under a name no registry serves: it can only come from the import.
skopeo copy --src-tls-verify=false "docker://$REGISTRY/busybox:1" "oci-archive:$WORK/imported.tar:berth.test/imported:1" \
  >"$WORK/skopeo.log" 2>&1
imported() {
  "$BERTH" image import "$WORK/imported.tar" --data-dir "$WORK/agent" >"$WORK/import.out" 2>&1
  cat "$WORK/import.out"
  grep -q '^berth.test/imported:1 sha256:' "$WORK/import.out"
}
check "berth image import loads an OCI archive into the agent's store" imported
cat >"$WORK/extra.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: e2e-httpd}
spec:
  replicas: 1
  selector: {matchLabels: {app: e2e-httpd}}
  template:
    metadata: {labels: {app: e2e-httpd}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: $REGISTRY/busybox:1
        command: ["sh", "-c", "mkdir -p /www && echo hello from httpd > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-ready, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $REGISTRY/busybox:1
    command: ["sh", "-c", "sleep 8; touch /ready; exec sleep 3600"]
    readinessProbe: {exec: {command: ["cat", "/ready"]}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-backoff, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: $REGISTRY/busybox:1, command: ["sh", "-c", "exit 3"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-oom, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  restartPolicy: Never
  containers:
  - name: main
    image: $REGISTRY/busybox:1
    command: ["sh", "-c", "a=x; while true; do a=\$a\$a; done"]
    resources: {limits: {memory: 32Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-live, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $REGISTRY/busybox:1
    command: ["sleep", "3600"]
    livenessProbe: {httpGet: {path: /healthz, port: 8081}, periodSeconds: 1, failureThreshold: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-grace, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 4
  volumes: [{name: host, hostPath: {path: "$HOSTDIR"}}]
  containers:
  - name: main
    image: $REGISTRY/busybox:1
    command: ["sh", "-c", "trap 'echo term >> /host/log' TERM; echo started >> /host/log; while true; do sleep 1; done"]
    volumeMounts: [{name: host, mountPath: /host}]
    lifecycle: {preStop: {exec: {command: ["sh", "-c", "echo prestop >> /host/log"]}}}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-nopull, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  containers: [{name: main, image: $REGISTRY/nope:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-neverpull, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  containers: [{name: main, image: berth.test/missing:1, imagePullPolicy: Never}]
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-imported, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: berth.test/imported:1, imagePullPolicy: Never, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-imported-ifnp, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: berth.test/imported:1, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-deadline, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  activeDeadlineSeconds: 3
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: $REGISTRY/busybox:1, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-bigcpu, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  containers: [{name: main, image: $REGISTRY/busybox:1, command: ["sleep", "3600"], resources: {requests: {cpu: "1000"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-bigmem, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  containers: [{name: main, image: $REGISTRY/busybox:1, command: ["sleep", "3600"], resources: {requests: {memory: 1Pi}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-selector, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  nodeSelector: {berth-e2e/disk: ssd}
  containers: [{name: main, image: $REGISTRY/busybox:1, command: ["sleep", "3600"]}]
EOF
# From a file: once, piped into kubectl, one document of this manifest failed to parse.
kubectl apply -f "$WORK/extra.yaml" >/dev/null
jp() { kubectl get pod "$1" -o jsonpath="$2"; }
events_of() {  # reason|message, one line per event of the object
  kubectl get events --field-selector "involvedObject.name=$1" -o jsonpath='{range .items[*]}{.reason}{"|"}{.message}{"\n"}{end}'
}
conditions() { jp "$1" '{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="ContainersReady")].status}'; }
# The crash loop's waiting messages, sampled every second from the start: its back-off must grow.
(
  i=0
  while [ $i -lt 90 ]; do
    jp e2e-backoff '{.status.containerStatuses[0].state.waiting.message}{"\n"}'
    sleep 1
    i=$((i + 1))
  done
) >"$WORK/backoff.seen" 2>/dev/null &
BACKOFF_SAMPLER=$!

# Readiness gates Ready and ContainersReady: the container runs, but is not ready until its probe passes.
not_ready_while_probe_fails() {
  wait_for 30 phase_is e2e-ready Running || return 1
  conditions e2e-ready
  [ "$(conditions e2e-ready)" = False/False ] &&
    [ "$(jp e2e-ready '{.status.conditions[?(@.type=="Ready")].reason}')" = ContainersNotReady ] &&
    [ "$(jp e2e-ready '{.status.conditions[?(@.type=="Ready")].message}')" = 'containers with unready status: [main]' ] &&
    [ "$(jp e2e-ready '{.status.containerStatuses[0].ready}')" = false ]
}
ready_after_probe_passes() { [ "$(conditions e2e-ready)" = True/True ] && [ "$(jp e2e-ready '{.status.containerStatuses[0].ready}')" = true ]; }
check "a failing readiness probe keeps Ready and ContainersReady False" not_ready_while_probe_fails
check "Ready and ContainersReady turn True once the probe passes" wait_for 20 ready_after_probe_passes

# A Deployment of busybox httpd: Ready through its httpGet probe, answering at its pod IP from
# the host and from another pod.
check "an httpd deployment becomes Ready" kubectl rollout status deployment/e2e-httpd --timeout=60s
HTTPD_IP=$(kubectl get pods -l app=e2e-httpd -o jsonpath='{.items[0].status.podIP}')
httpd_from_host() { curl -sf --max-time 3 "http://$HTTPD_IP:8080/" | grep -qx 'hello from httpd'; }
check "httpd answers at its pod IP from the host" httpd_from_host
cat >"$WORK/client.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: e2e-client, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  restartPolicy: Never
  containers:
  - name: main
    image: $REGISTRY/busybox:1
    command: ["sh", "-c", "printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc -w 5 $HTTPD_IP 8080"]
EOF
kubectl apply -f "$WORK/client.yaml" >/dev/null
httpd_from_pod() { phase_is e2e-client Succeeded && kubectl logs e2e-client | grep -qx 'hello from httpd'; }
check "httpd answers at its pod IP from another pod" wait_for 30 httpd_from_pod

# Admission: requests beyond the node's allocatable, or a node selector the node does not match.
NODE_MILLICPU=$(( $(kubectl get node "$NODE" -o jsonpath='{.status.allocatable.cpu}') * 1000 ))
rejected() {  # rejected POD REASON MESSAGE-PATTERN
  wait_for 20 phase_is "$1" Failed || return 1
  jp "$1" '{.status.reason}|{.status.message}'
  echo
  [ "$(jp "$1" '{.status.reason}')" = "$2" ] && jp "$1" '{.status.message}' | grep -qxE "$3" &&
    [ -z "$(jp "$1" '{.status.containerStatuses}')" ] && events_of "$1" | grep -q "^$2|"
}
check "a pod requesting more cpu than allocatable is rejected OutOfcpu" rejected e2e-bigcpu OutOfcpu \
  "Pod was rejected: Node didn't have enough resource: cpu, requested: 1000000, used: [0-9]+, capacity: $NODE_MILLICPU"
check "a pod requesting more memory than allocatable is rejected OutOfmemory" rejected e2e-bigmem OutOfmemory \
  "Pod was rejected: Node didn't have enough resource: memory, requested: 1125899906842624, used: [0-9]+, capacity: [0-9]+"
check "a pod whose nodeSelector the node does not match is rejected NodeAffinity" rejected e2e-selector NodeAffinity \
  "Pod was rejected: Predicate NodeAffinity failed: node\(s\) didn't match Pod's node affinity/selector"
kubectl label node "$NODE" berth-e2e/disk=ssd >/dev/null
cat >"$WORK/selector.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: e2e-selector-ok, labels: {e2e: extra}}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  nodeSelector: {berth-e2e/disk: ssd}
  containers: [{name: main, image: $REGISTRY/busybox:1, command: ["sleep", "3600"]}]
EOF
kubectl apply -f "$WORK/selector.yaml" >/dev/null
check "once the node has the label, a pod with that nodeSelector runs" wait_for 30 phase_is e2e-selector-ok Running

# Images: an imported one runs with imagePullPolicy Never (and IfNotPresent) without any
# registry; a missing one with Never fails at once; a missing one in a registry backs off.
check "an imported image runs with imagePullPolicy Never" wait_for 30 phase_is e2e-imported Running
imported_ifnp() { phase_is e2e-imported-ifnp Running && events_of e2e-imported-ifnp | grep -qx 'Pulled|Container image "berth.test/imported:1" already present on machine'; }
check "an imported image runs with IfNotPresent, found on the machine" wait_for 30 imported_ifnp
never_pull() {
  [ "$(jp e2e-neverpull '{.status.containerStatuses[0].state.waiting.reason}')" = ErrImageNeverPull ] &&
    [ "$(jp e2e-neverpull '{.status.containerStatuses[0].state.waiting.message}')" = 'Container image "berth.test/missing:1" is not present with pull policy of Never' ] &&
    events_of e2e-neverpull | grep -q '^ErrImageNeverPull|'
}
check "a missing image with imagePullPolicy Never is ErrImageNeverPull" wait_for 30 never_pull
PULL_ERR="rpc error: code = NotFound desc = failed to pull and unpack image \"$REGISTRY/nope:1\": failed to resolve reference \"$REGISTRY/nope:1\": $REGISTRY/nope:1: not found"
pull_failed() {
  events_of e2e-nopull | grep -qxF "Failed|Failed to pull image \"$REGISTRY/nope:1\": $PULL_ERR" &&
    events_of e2e-nopull | grep -qx 'Failed|Error: ErrImagePull'
}
pull_backoff() {
  jp e2e-nopull '{.status.containerStatuses[0].state.waiting.reason}|{.status.containerStatuses[0].state.waiting.message}'
  [ "$(jp e2e-nopull '{.status.containerStatuses[0].state.waiting.reason}')" = ImagePullBackOff ] &&
    [ "$(jp e2e-nopull '{.status.containerStatuses[0].state.waiting.message}')" = "Back-off pulling image \"$REGISTRY/nope:1\": ErrImagePull: $PULL_ERR" ] &&
    events_of e2e-nopull | grep -qx "BackOff|Back-off pulling image \"$REGISTRY/nope:1\""
}
check "a missing image fails to pull with ErrImagePull and the runtime's not found" wait_for 30 pull_failed
check "then backs off: ImagePullBackOff carrying the pull error" wait_for 30 pull_backoff

# CrashLoopBackOff whose back-off grows: 10s after the second exit, 20s after the third.
backoff_grew() {
  uid=$(jp e2e-backoff '{.metadata.uid}')
  seen=$(grep -v '^$' "$WORK/backoff.seen" | uniq | head -2 | tr '\n' '|')
  echo "$seen"
  [ "$seen" = "back-off 10s restarting failed container=main pod=e2e-backoff_default($uid)|back-off 20s restarting failed container=main pod=e2e-backoff_default($uid)|" ] &&
    [ "$(jp e2e-backoff '{.status.containerStatuses[0].restartCount}')" -ge 2 ] &&
    [ "$(jp e2e-backoff '{.status.containerStatuses[0].lastState.terminated.exitCode}')" = 3 ] &&
    events_of e2e-backoff | grep -qx "BackOff|Back-off restarting failed container main in pod e2e-backoff_default($uid)"
}
check "CrashLoopBackOff's back-off grows: 10s, then 20s after the next crash" wait_for 45 backoff_grew
kill "$BACKOFF_SAMPLER" 2>/dev/null

# A memory hog over its limit is OOMKilled (exit code 137).
oom_killed() {
  jp e2e-oom '{.status.phase} {.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}'
  [ "$(jp e2e-oom '{.status.phase} {.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}')" = "Failed OOMKilled 137" ]
}
check "a container over its memory limit is OOMKilled with exit code 137" wait_for 30 oom_killed

# A failing liveness probe restarts the container, again and again.
liveness_restarts() {
  restarts=$(jp e2e-live '{.status.containerStatuses[0].restartCount}')  # not "n": wait_for counts with it
  echo "restartCount $restarts"
  [ "${restarts:-0}" -ge 2 ] &&
    events_of e2e-live | grep -qx 'Killing|Container main failed liveness probe, will be restarted' &&
    events_of e2e-live | grep -q '^Unhealthy|Liveness probe failed: '
}
check "a failing liveness probe restarts the container (restartCount rises)" wait_for 40 liveness_restarts

# activeDeadlineSeconds: the pod is stopped and Failed with DeadlineExceeded.
deadline_exceeded() {
  jp e2e-deadline '{.status.phase}|{.status.reason}|{.status.message}'
  [ "$(jp e2e-deadline '{.status.phase}|{.status.reason}|{.status.message}')" = \
    'Failed|DeadlineExceeded|Pod was active on the node longer than the specified deadline' ] &&
    [ -n "$(jp e2e-deadline '{.status.containerStatuses[0].state.terminated.exitCode}')" ] &&
    events_of e2e-deadline | grep -qx 'DeadlineExceeded|Pod was active on the node longer than the specified deadline'
}
check "activeDeadlineSeconds fails the pod with DeadlineExceeded" wait_for 30 deadline_exceeded

# The agent restarted mid-flight: what it failed stays failed (a rejected pod is not admitted
# again), what runs keeps its container, and a crash loop goes on counting.
CID_IMPORTED=$(jp e2e-imported '{.status.containerStatuses[0].containerID}')
RESTARTS_BACKOFF=$(jp e2e-backoff '{.status.containerStatuses[0].restartCount}')
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
$BERTH_AGENT --server "https://127.0.0.1:$PORT" --token-file "$WORK/server/node-token" \
  --ca-file "$WORK/server/pki/ca.crt" --ca-key-file "$WORK/server/pki/ca.key" --node-name "$NODE" \
  --data-dir "$WORK/agent" --runtime "$RUNTIME" --insecure-registry "$REGISTRY" \
  --listen "127.0.0.1:$AGENT_PORT" --node-ip 127.0.0.1 --pod-cidr "$POD_CIDR" --bridge "$BRIDGE" >>"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
restarted_agent_kept_state() {
  [ "$(grep -c 're-adopting pod default/e2e-bigcpu ' "$WORK/agent.log")" -ge 1 ] || return 1
  jp e2e-bigcpu '{.status.phase}|{.status.reason} '
  jp e2e-deadline '{.status.phase}|{.status.reason} '
  jp e2e-backoff '{.status.containerStatuses[0].restartCount}'
  echo
  [ "$(jp e2e-bigcpu '{.status.phase}|{.status.reason}')" = 'Failed|OutOfcpu' ] &&
    [ -z "$(jp e2e-bigcpu '{.status.containerStatuses}')" ] &&
    [ "$(events_of e2e-bigcpu | grep -c '^OutOfcpu|')" = 1 ] &&
    [ "$(jp e2e-deadline '{.status.phase}|{.status.reason}')" = 'Failed|DeadlineExceeded' ] &&
    [ "$(jp e2e-imported '{.status.containerStatuses[0].containerID}')" = "$CID_IMPORTED" ] &&
    phase_is e2e-imported Running &&
    [ "$(jp e2e-backoff '{.status.containerStatuses[0].restartCount}')" -gt "$RESTARTS_BACKOFF" ]
}
check "a restarted agent keeps failed pods failed and running ones running" wait_for 60 restarted_agent_kept_state

# Graceful deletion: preStop runs first, then SIGTERM (ignored here), then SIGKILL once
# terminationGracePeriodSeconds (4) is over.
graceful_delete() {
  wait_for 30 phase_is e2e-grace Running || return 1
  t0=$(date +%s%N)
  kubectl delete pod e2e-grace --wait=true --timeout=60s >/dev/null || return 1
  took=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "deletion took ${took} ms; the container wrote:"
  cat "$HOSTDIR/log"
  [ "$(tr '\n' ' ' <"$HOSTDIR/log")" = "started prestop term " ] && [ "$took" -ge 4000 ] && [ "$took" -lt 12000 ]
}
check "deletion runs preStop, then SIGTERM, then SIGKILL after the grace period" graceful_delete

MY_UIDS=$(kubectl get pods -l e2e=extra -o jsonpath='{.items[*].metadata.uid}')
MY_UIDS="$MY_UIDS $(kubectl get pods -l app=e2e-httpd -o jsonpath='{.items[*].metadata.uid}')"
kubectl delete deployment e2e-httpd --wait=true --timeout=60s >/dev/null 2>&1
kubectl delete pod -l e2e=extra --wait=true --timeout=60s >/dev/null 2>&1
extra_gone() { [ -z "$(kubectl get pods -l e2e=extra -o name)" ] && [ -z "$(kubectl get pods -l app=e2e-httpd -o name)" ]; }
check "the pods above are deleted, failed and rejected ones too" wait_for 60 extra_gone

UIDS="$(kubectl get pod e2e-hello e2e-crash e2e-done -o jsonpath='{.items[*].metadata.uid}') ${MY_UIDS:-}"
kubectl delete pod e2e-hello e2e-crash e2e-done --wait=true --timeout=60s >/dev/null 2>&1
pods_gone() { ! kubectl get pod e2e-hello e2e-crash e2e-done 2>/dev/null | grep -q e2e; }
no_netns() { for u in $UIDS; do ! ip netns list | grep -q "berth-$u" || return 1; done; }
no_veth_on_bridge() { [ -z "$(ip -o link show master "$BRIDGE" 2>/dev/null)" ]; }
no_process() { ! pgrep -f "__shim .*$WORK/agent" >/dev/null; }
# Mounts under the agent's directory, and any mount naming a deleted pod (its IPC namespace
# is bind-mounted outside the data directory).
no_mount() {
  ! grep -q "$WORK/agent" /proc/self/mountinfo || return 1
  for u in $UIDS; do ! grep -q "$u" /proc/self/mountinfo || return 1; done
}
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
