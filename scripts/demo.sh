#!/usr/bin/env bash
# Runs a local scope on loopback: the Resource Manager on the sample repository, three node
# agents enrolled with a join token (mutual TLS on the RM's agent port), and a sample request (a
# service with its dependencies, a failing and an unresolvable service, plain resources). Prints
# where to follow it; Ctrl-C stops everything.
#   RM_DEMO_PORT (8080) and RM_DEMO_AGENT_PORT (8443): the operator and agent ports;
#   RM_DEMO_DIR ($PWD/demo): logs and state; RM_DEMO_BUILD (build): the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${RM_DEMO_BUILD:-build}
bash scripts/setup.sh
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target resource-manager node-agent rmctl sample_repository

PORT=${RM_DEMO_PORT:-8080}
AGENT_PORT=${RM_DEMO_AGENT_PORT:-8443}
SCOPE=/gcube/devsec
STATE=${RM_DEMO_DIR:-$PWD/demo}
mkdir -p "$STATE"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "demo: stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "demo: starting the Resource Manager (operators: 127.0.0.1:$PORT, agents: 127.0.0.1:$AGENT_PORT," \
  "TLS with the scope CA it keeps in $STATE/rm/pki)"
"$BUILD"/bin/resource-manager --scope "$SCOPE" --listen "127.0.0.1:$PORT" \
  --agent-listen "127.0.0.1:$AGENT_PORT" --state-dir "$STATE/rm" \
  --repository "$BUILD"/repository > "$STATE/rm.url" 2> "$STATE/rm.log" &
pids+=($!)
# It prints its operator URL, then "agents: URL".
for _ in $(seq 100); do [ "$(wc -l < "$STATE/rm.url")" -ge 2 ] && break; sleep 0.1; done
URL=$(head -n1 "$STATE/rm.url")
AGENTS=$(sed -n 's/^agents: //p' "$STATE/rm.url")
[ -n "$URL" ] && [ -n "$AGENTS" ] || { echo "demo: the Resource Manager did not start; see $STATE/rm.log"; exit 1; }

# Enrollment, as on a real network: a join token for the three agents, kept in a file only its
# owner reads (a token never goes on a command line, where `ps` shows it), and the CA's pin.
echo "demo: rmctl token create --uses 3 --ttl 15m"
TOKEN_OUT=$("$BUILD"/bin/rmctl --manager "$URL" token create --uses 3 --ttl 15m --description demo)
CA_SHA256=$(sed -n 's/^ca-sha256: //p' <<<"$TOKEN_OUT")
TOKEN_FILE="$STATE/join-token"
( umask 077; sed -n 's/^token: //p' <<<"$TOKEN_OUT" > "$TOKEN_FILE" )
chmod 0600 "$TOKEN_FILE"
[ -s "$TOKEN_FILE" ] && [ -n "$CA_SHA256" ] || { echo "demo: no join token: $TOKEN_OUT"; exit 1; }
echo "demo: join token in $TOKEN_FILE (0600); scope CA pin (--ca-sha256) $CA_SHA256"

for n in 1 2 3; do
  echo "demo: node-agent --name node$n --manager $AGENTS --join-token-file $TOKEN_FILE --ca-sha256 ${CA_SHA256:0:12}..."
  "$BUILD"/bin/node-agent --name "node$n" --listen 127.0.0.1:0 --manager "$AGENTS" \
    --join-token-file "$TOKEN_FILE" --ca-sha256 "$CA_SHA256" --root "$STATE/node$n" \
    --labels "zone=demo,rack=r$n" --keep-processes-on-exit false \
    > "$STATE/node$n.url" 2> "$STATE/node$n.log" &
  pids+=($!)
done
for _ in $(seq 150); do
  [ "$("$BUILD"/bin/rmctl --manager "$URL" nodes 2>/dev/null | grep -c ALIVE)" -ge 3 ] && break
  sleep 0.1
done
# Enrolled: each agent keeps its certificate in <root>/pki and needs no token to start again.
echo "demo: the agents enrolled, which used the token up (rmctl token list no longer shows it):"
"$BUILD"/bin/rmctl --manager "$URL" token list

export RM_MANAGER="$URL" RM_SCOPE="$SCOPE"
"$BUILD"/bin/rmctl nodes
ID=$("$BUILD"/bin/rmctl add --service InformationSystem/IS-Notifier --service Samples/Static-Docs \
      --service Samples/Broken-Install --service Samples/Missing-Dep \
      --resource GenericResource:f2c04460-b446-11dd-8aab-e7a1e3fdae89 \
      --resource MetadataCollection:61927680-a996-11dd-961c-8eba14a244c3 2>/dev/null)
cat <<TXT

The scope $SCOPE is managed by $URL (agents enroll at $AGENTS)
  scope page:   $URL/
  the report:   $URL/reports/$ID       (raw XML: $URL/reports/$ID.xml)
  follow it:    RM_MANAGER=$URL $BUILD/bin/rmctl report $ID --wait
  another node: $BUILD/bin/rmctl --manager $URL token create --print-join-command
Logs and state are in $STATE. Ctrl-C stops the demo.

TXT
"$BUILD"/bin/rmctl report "$ID" --wait || true
echo
echo "demo: still running; open $URL/ in a browser. Ctrl-C to stop."
wait
