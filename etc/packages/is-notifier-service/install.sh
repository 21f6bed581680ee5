#!/bin/sh
# The service needs python3 at run time; fail the activation early and clearly if it is absent.
set -eu
if ! command -v python3 >/dev/null 2>&1; then
    echo "Notifier-service needs python3 on the node" >&2
    exit 1
fi
mkdir -p run
