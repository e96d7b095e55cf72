#!/usr/bin/env bash
# Print a fresh KRaft cluster id: 16 random bytes as 22 base64url characters.
# One in 64 such strings starts with '-', which command lines read as an option; Kafka's own
# Uuid.randomUuid() draws again in that case, and so do we (a CI run failed on
# "--cluster-id/-t: expected one argument", 2026-11-28).
set -euo pipefail
id=-
while [ "${id:0:1}" = - ]; do
  id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
done
printf '%s\n' "$id"
