#!/usr/bin/env bash
# Configures (once) and builds build/berth and the tests. ccache is used when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build -Dbuildtype=release
fi
ninja -C build
