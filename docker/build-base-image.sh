#!/usr/bin/env bash
# Build a minimal Debian base image with python3 for the mdsemu image, offline from any image
# registry: debootstrap (from Debian's package mirror) + `docker import`.
#
#   docker/build-base-image.sh [--force] [TAG]        default TAG: mdsemu-base:bookworm
#
# The image is kept by the engine; the root file system tarball is also cached in
# ${MDSEMU_CACHE:-~/.cache/mdsemu}, so a fresh engine imports it again without debootstrap.
# Then: docker build --build-arg BASE_IMAGE=mdsemu-base:bookworm -t mdsemu .
# Environment: MDSEMU_DEBIAN_MIRROR (default http://deb.debian.org/debian), MDSEMU_SUITE
# (default bookworm, whose python3 is 3.11). Exit status 0 when the image is there at the end.
set -euo pipefail

force=0
if [[ "${1:-}" == "--force" ]]; then force=1; shift; fi
suite=${MDSEMU_SUITE:-bookworm}
tag=${1:-mdsemu-base:$suite}
mirror=${MDSEMU_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${MDSEMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mdsemu}
tarball=$cache/base-$suite-$(uname -m).tar.gz
packages=python3,python3-venv

say() { echo "build-base-image: $*" >&2; }

mkdir -p "$cache"
exec 9>"$cache/base-image.lock"
flock 9  # one builder at a time (parallel test sessions, two checkouts)

if [[ $force == 0 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    say "$tag is already there"
    exit 0
fi

if [[ $force == 1 || ! -s $tarball ]]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            say "installing debootstrap"
            apt-get update -qq >&2 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
        else
            say "debootstrap is missing (apt-get install debootstrap, as root)"
            exit 2
        fi
    fi
    if [[ $(id -u) != 0 ]]; then
        say "debootstrap needs root"
        exit 2
    fi
    root=$(mktemp -d "${TMPDIR:-/tmp}/mdsemu-rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    say "debootstrap --variant=minbase --include=$packages $suite from $mirror"
    debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" \
        > "$root.log" 2>&1 || { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 3; }
    rm -f "$root.log"
    # what an image does not need: package lists and caches, docs, man pages, locales
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
           "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
           "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
    find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' \
        -exec rm -rf {} + 2>/dev/null || true
    tar --numeric-owner -C "$root" -czf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
    trap - EXIT
fi

say "importing $tarball as $tag"
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$tag" >/dev/null
say "built $tag"
