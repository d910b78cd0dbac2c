#!/usr/bin/env bash
# Installs the Debian packages the tests and `make demo` run for real: PostgreSQL, Prometheus
# (with promtool), Alertmanager, podman/buildah (images without a Docker engine), Chromium (to
# look at reports and dashboards), wrk (load generator), valgrind (instruction counts for
# `make bench-api-instructions`), debootstrap (local base images), and the local node's runtime:
# containerd (with ctr), conntrack (kube-proxy), iptables and iproute2.
# Idempotent: installs only what is missing, and says what it could not install and why.
set -euo pipefail

# command -> Debian package that provides it
declare -A wanted=(
  [pg_ctl]=postgresql
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [podman]=podman
  [buildah]=buildah
  # podman's runtime for the image tests: crun fails on hybrid cgroup hosts
  [runc]=runc
  [chromium]=chromium
  [wrk]=wrk
  [valgrind]=valgrind
  [debootstrap]=debootstrap
  [containerd]=containerd
  [ctr]=containerd
  [conntrack]=conntrack
  [iptables]=iptables
  [ip]=iproute2
)

have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/lib/postgresql/15/bin/$1" ] || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]
}

missing=()
for cmd in "${!wanted[@]}"; do
  have "$cmd" || missing+=("${wanted[$cmd]}")
done
# The CNI plugins the local node's pods are wired with (bridge, host-local, loopback).
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The Debian services must not start on their own: the tests start their own instances on free ports.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" uidmap fuse-overlayfs slirp4netns containernetworking-plugins >/dev/null
echo "system packages installed"
