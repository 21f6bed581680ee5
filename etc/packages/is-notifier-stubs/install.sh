#!/bin/sh
# Activates the stubs library: installs its descriptor where dependents look for it.
set -eu
mkdir -p lib
cp src/notifier-stubs.properties lib/notifier-stubs.properties
echo "Notifier-stubs activated in $(pwd)"
