#!/usr/bin/env bash
# The real servers the tests start (PostgreSQL, Dovecot, Prometheus) and the compose parser, from Debian's
# packages. Run before `npm test` (its `pretest`): installs what is missing when run as root on Debian, otherwise
# names what to install. The packaged daemons are not used: the tests start private instances on free ports.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# kustomize renders deploy/kubernetes in test/ops/kubernetes.test.ts: kubectl's built-in one (v5 syntax:
# `patches` with targets). Debian's own kubernetes-client ships kustomize 2.0, too old for that, so it is not a
# fallback: the machine's kubectl (Google Cloud SDK's package) or any kubectl ≥ 1.27 is needed.
if ! kubectl kustomize --help >/dev/null 2>&1; then
  echo "The tests need kubectl ≥ 1.27 (for 'kubectl kustomize') on PATH." >&2
  exit 1
fi
((${#need[@]})) || exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "The tests need these Debian packages: ${need[*]} (as root: apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "test prerequisites: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The packages' own daemons are not needed (the tests run private instances as unprivileged processes on free
# ports) and must not be started by the install: a temporary policy-rc.d (invoke-rc.d's policy hook) denies
# starting them. Services already on the machine are left exactly as they are: never stopped, never reconfigured.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
