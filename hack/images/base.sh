#!/usr/bin/env bash
# Builds the local base image (Debian bookworm + its python3.11) with debootstrap, for machines
# that cannot pull python:3.11-slim from a registry. The root filesystem tarball is cached under
# ${CREDIT_MONITORING_CACHE}/images and imported into podman's store only when it is missing.
# Prints the image reference on stdout; everything else goes to stderr.
set -euo pipefail

cache="${CREDIT_MONITORING_CACHE:-$HOME/.cache/credit-model-monitoring}/images"
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump when the package list or the clean-up changes, so the cached tarball is rebuilt.
revision=1
image="localhost/credit-monitoring-base:${suite}-py3.11-r${revision}"
tarball="$cache/base-${suite}-py3.11-r${revision}.tar"
# python3-venv gives ensurepip, which the Dockerfiles' builder stage uses for its virtualenv.
packages=python3,python3-venv,ca-certificates

log() { echo "base image: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "base image: debootstrap and podman import need root" >&2
  exit 1
fi

if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

if [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap $suite into $rootfs (a few minutes, once)"
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >&2
  # What a slim image leaves out: package caches, docs and locales nobody reads in a container.
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/tmp/*
  find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} +
  # `python` as well as `python3`, as in the official python images.
  ln -sf python3 "$rootfs"/usr/bin/python
  tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
fi

log "importing $tarball as $image"
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$tarball" "$image" >&2
echo "$image"
