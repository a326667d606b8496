#!/usr/bin/env bash
# Build the mdsemu image without a registry:
#   1. the base image: $MDSEMU_BASE_IMAGE, or python:3.11-slim if the engine has it, or else
#      mdsemu-base:bookworm, made by docker/build-base-image.sh (debootstrap) when missing;
#   2. the wheels of mdsemu and its dependencies into docker/wheels/ (pip, on this host: its
#      Python must be 3.11 like the image's; dependencies come from PyPI or pip's cache);
#   3. docker build --build-arg BASE_IMAGE=... -t TAG . (no network needed).
#
#   docker/build-image.sh [TAG]          default TAG: $MDSEMU_IMAGE or mdsemu:latest
#   docker/build-image.sh --remove TAG   remove the image and every build leftover (the tests)
# Environment: PYTHON (default .venv/bin/python, else python3), MDSEMU_BASE_IMAGE.
# Exit status: 0 built; 2 no base image; 3 the wheels could not be built (pip's output says
# why: no PyPI and no cached wheels?); 1 anything else (docker build's output follows).
set -euo pipefail
cd "$(dirname "$0")/.."
remove=0
if [[ "${1:-}" == "--remove" ]]; then remove=1; shift; fi
tag=${1:-${MDSEMU_IMAGE:-mdsemu:latest}}
say() { echo "build-image: $*" >&2; }
cache=${MDSEMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mdsemu}
mkdir -p "$cache"
exec 9>"$cache/image.lock"
flock 9  # one build at a time: docker/wheels and the image cache are shared

if [[ $remove == 1 ]]; then
    docker rmi --force "$tag" >/dev/null 2>&1 || true
    for stage in build final; do  # untagged images of our builds (labels in the Dockerfile)
        docker image prune --force --filter "label=org.mdsemu.stage=$stage" >/dev/null
    done
    say "removed $tag"
    exit 0
fi

base=${MDSEMU_BASE_IMAGE:-}
if [[ -z $base ]]; then
    if docker image inspect python:3.11-slim >/dev/null 2>&1; then
        base=python:3.11-slim
    else
        base=mdsemu-base:bookworm
    fi
fi
if ! docker image inspect "$base" >/dev/null 2>&1; then
    if [[ $base == mdsemu-base:* ]]; then
        docker/build-base-image.sh "$base" || exit 2
    else
        say "base image $base is not in the engine; trying to pull it"
        docker pull "$base" >&2 || exit 2
    fi
fi

python=${PYTHON:-}
if [[ -z $python ]]; then
    if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
fi
# A clean copy of the sources: an in-tree build would reuse build/ (files since deleted too).
src=$(mktemp -d "${TMPDIR:-/tmp}/mdsemu-src.XXXXXX")
trap 'rm -rf "$src"' EXIT
cp -r pyproject.toml README.md common mon mds osd client nfs vip "$src"/
find "$src" -name __pycache__ -prune -exec rm -rf {} +
mkdir -p docker/wheels
rm -f docker/wheels/mdsemu-*.whl
say "wheels into docker/wheels ($("$python" -V 2>&1))"
# SOURCE_DATE_EPOCH: the same sources give the same wheel, so docker build's cache holds.
log=$src.pip.log
if ! SOURCE_DATE_EPOCH=315532800 "$python" -m pip wheel --quiet --disable-pip-version-check \
        --wheel-dir docker/wheels --find-links docker/wheels "$src" > "$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; exit 3
fi
rm -f "$log"

say "docker build -t $tag (base $base)"
# The legacy builder needs no buildx. It keeps the build stage as an untagged image (the
# cache of the next build: the newest one is kept, older ones removed), and a rebuilt tag
# leaves the previous image untagged (removed).
if ! DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build --build-arg "BASE_IMAGE=$base" \
        --label org.mdsemu.stage=final -t "$tag" . > "$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; exit 1
fi
rm -f "$log"
docker image prune --force --filter label=org.mdsemu.stage=final >/dev/null
old=$(docker images --quiet --filter dangling=true --filter label=org.mdsemu.stage=build \
      | tail -n +2)
if [[ -n $old ]]; then docker rmi $old >/dev/null 2>&1 || true; fi
say "built $tag"
