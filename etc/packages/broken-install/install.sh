#!/bin/sh
# Fails on purpose so that deployments can show FAILED (and SKIPPED for its dependents).
echo "Broken-Install: simulated activation failure (this sample always fails)" >&2
exit 1
