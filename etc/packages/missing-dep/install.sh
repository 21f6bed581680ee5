#!/bin/sh
echo "Missing-Dep activated"
