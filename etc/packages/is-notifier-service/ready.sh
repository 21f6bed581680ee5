#!/bin/sh
# Ready when the server answers on the port it recorded and serves the expected page.
# Polls for about 25 s (python starts slowly on a busy node), inside the 30 s Ready timeout.
set -u
tries=0
while [ "$tries" -lt 25 ]; do
    if [ -s run/port ]; then
        port=$(cat run/port)
        if python3 - "$port" 2>/dev/null <<'PY'
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=2) as r:
    sys.exit(0 if b"IS-Notifier" in r.read() else 1)
PY
        then
            exit 0
        fi
    fi
    tries=$((tries + 1))
    sleep 1
done
echo "Notifier-service did not answer on 127.0.0.1 within 25 s" >&2
exit 1
