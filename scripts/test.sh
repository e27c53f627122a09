#!/usr/bin/env bash
# Installs what is missing, builds, runs every unit test (meson) and the end-to-end suite
# (pytest against the real server with the real kubectl and Python client), and ends with
# one line: "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh || exit 1
scripts/build.sh || { echo "0 passed, 1 failed"; exit 1; }

rm -f build/meson-logs/testlog.json
meson test -C build --print-errorlogs --num-processes 2 > build/unit-tests.log 2>&1
tail -n 25 build/unit-tests.log
read -r unit_pass unit_fail < <(/usr/bin/python3 - <<'PY'
import json
p = f = 0
try:
    for line in open("build/meson-logs/testlog.json"):
        r = json.loads(line)
        if r.get("result") in ("OK", "EXPECTEDFAIL", "SKIP"): p += 1
        else: f += 1
except FileNotFoundError:
    f = 1
print(p, f)
PY
)

/usr/bin/python3 -m pytest -q conformance -p no:cacheprovider --junitxml=build/conformance.xml
read -r e2e_pass e2e_fail < <(/usr/bin/python3 - <<'PY'
import xml.etree.ElementTree as ET
try:
    root = ET.parse("build/conformance.xml").getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    tests = sum(int(s.get("tests", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    print(tests - bad - skipped, bad)
except Exception:
    print(0, 1)
PY
)
passed=$((unit_pass + e2e_pass))
failed=$((unit_fail + e2e_fail))
echo "unit: $unit_pass passed, $unit_fail failed; end-to-end: $e2e_pass passed, $e2e_fail failed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
