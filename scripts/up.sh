#!/usr/bin/env bash
# Installs what is missing, builds, and runs a one-node cluster on this machine in the
# foreground: the API server, its controllers and a node agent running pods through runc.
# State lives in $BERTH_DATA_DIR (default /var/lib/berth); the admin kubeconfig is written
# to <data-dir>/kubeconfig:  export KUBECONFIG=/var/lib/berth/kubeconfig; kubectl get ns
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/berth up --data-dir "${BERTH_DATA_DIR:-/var/lib/berth}" --listen "${BERTH_LISTEN:-127.0.0.1:6443}"
