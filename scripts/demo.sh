#!/usr/bin/env bash
# Runs a local scope on loopback: the Resource Manager on the sample repository, three node
# agents, and a sample request (a service with its dependencies, a failing and an unresolvable
# service, plain resources). Prints where to follow it; Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target resource-manager node-agent rmctl sample_repository

PORT=${RM_DEMO_PORT:-8080}
SCOPE=/gcube/devsec
STATE=${RM_DEMO_DIR:-$PWD/demo}
mkdir -p "$STATE"
pids=()
cleanup() {
  echo; echo "demo: stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

build/bin/resource-manager --scope "$SCOPE" --listen "127.0.0.1:$PORT" --state-dir "$STATE/rm" \
  --repository build/repository > "$STATE/rm.url" 2> "$STATE/rm.log" &
pids+=($!)
for _ in $(seq 50); do [ -s "$STATE/rm.url" ] && break; sleep 0.1; done
URL=$(head -n1 "$STATE/rm.url")
[ -n "$URL" ] || { echo "demo: the Resource Manager did not start; see $STATE/rm.log"; exit 1; }

for n in 1 2 3; do
  build/bin/node-agent --name "node$n" --listen 127.0.0.1:0 --manager "$URL" --root "$STATE/node$n" \
    --labels "zone=demo,rack=r$n" > "$STATE/node$n.url" 2> "$STATE/node$n.log" &
  pids+=($!)
done
for _ in $(seq 100); do
  [ "$(build/bin/rmctl --manager "$URL" nodes 2>/dev/null | grep -c ALIVE)" -ge 3 ] && break
  sleep 0.1
done

export RM_MANAGER="$URL" RM_SCOPE="$SCOPE"
build/bin/rmctl nodes
ID=$(build/bin/rmctl add --service InformationSystem/IS-Notifier --service Samples/Static-Docs \
      --service Samples/Broken-Install --service Samples/Missing-Dep \
      --resource GenericResource:f2c04460-b446-11dd-8aab-e7a1e3fdae89 \
      --resource MetadataCollection:61927680-a996-11dd-961c-8eba14a244c3 2>/dev/null)
cat <<TXT

The scope $SCOPE is managed by $URL
  scope page:   $URL/
  the report:   $URL/reports/$ID       (raw XML: $URL/reports/$ID.xml)
  follow it:    RM_MANAGER=$URL build/bin/rmctl report $ID --wait
Logs and state are in $STATE. Ctrl-C stops the demo.

TXT
build/bin/rmctl report "$ID" --wait || true
echo
echo "demo: still running; open $URL/ in a browser. Ctrl-C to stop."
wait
