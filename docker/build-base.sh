#!/usr/bin/env bash
# Build the stand-in base image (docker/base.Dockerfile) from Debian packages: debootstrap a
# minimal bookworm root filesystem from the mirror apt already uses, import it, then add Debian's
# python3. Both images are kept, so a second run costs nothing.
#
#   docker/build-base.sh [IMAGE]        (default opsml-python-base:3.11-bookworm)
set -euo pipefail
image="${1:-opsml-python-base:3.11-bookworm}"
rootfs_image="opsml-rootfs:bookworm"
here="$(cd "$(dirname "$0")" && pwd)"
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "== $image is already built"
  exit 0
fi

mirror() {
  # The first Debian archive apt is configured with (deb822 .sources or a sources.list line).
  local uri
  uri="$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
    | grep -v security | head -n1 || true)"
  if [ -z "$uri" ]; then
    uri="$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)"
  fi
  [ -n "$uri" ] || { echo "no Debian mirror found in apt's sources" >&2; exit 1; }
  echo "$uri"
}

if ! docker image inspect "$rootfs_image" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
  work="$(mktemp -d)"
  scratch+=("$work")
  echo "== debootstrap bookworm (minbase) into $work"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$(mirror)" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  echo "== importing the root filesystem as $rootfs_image"
  tar -C "$work/rootfs" -c . | docker import - "$rootfs_image" >/dev/null
fi

context="$(mktemp -d)"
scratch+=("$context")
cp /etc/ssl/certs/ca-certificates.crt "$context/"
echo "== building $image"
docker build --quiet --network host --build-arg ROOTFS_IMAGE="$rootfs_image" \
  -f "$here/base.Dockerfile" -t "$image" "$context" >/dev/null
echo "== $image is built"
