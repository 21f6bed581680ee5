#!/bin/sh
# Verifies that every shipped file arrived intact.
set -eu
sha256sum -c --quiet SHA256SUMS
