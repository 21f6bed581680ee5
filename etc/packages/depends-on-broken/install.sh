#!/bin/sh
# Would succeed, but must never run: its dependency Broken-Install fails first.
echo "Depends-On-Broken activated"
