# One image for every mdsemu process: mdsemu-mon, mdsemu-osd, mdsemu-mds and the `mdsemu`
# command, behind one entry point (docker/entrypoint.py).
#
#   docker build -t mdsemu:latest .                            # base image python:3.11-slim
#   docker build --build-arg BASE_IMAGE=mdsemu-base:bookworm -t mdsemu:latest .
#
# The project is installed from wheels: those in docker/wheels/ when there are some (put there
# by docker/build-image.sh, so that the build needs no network), else wheels built here from
# the source (that needs PyPI). The base image needs python3 (3.11) with venv; with no
# registry, docker/build-base-image.sh makes one with debootstrap. See docs/containers.md.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
LABEL org.mdsemu.stage=build
# the context is only the sources and docker/ (.dockerignore)
COPY . /src/
RUN set -eu; \
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1; \
    python3 -m venv /opt/mdsemu; \
    if ls /src/docker/wheels/mdsemu-*.whl >/dev/null 2>&1; then \
        /opt/mdsemu/bin/pip install --no-index --find-links /src/docker/wheels mdsemu; \
    else \
        /opt/mdsemu/bin/pip install /src; \
    fi; \
    for f in entrypoint:mdsemu-entrypoint setup_fs:mdsemu-setup clog:mdsemu-clog; do \
        install -m 755 "/src/docker/${f%%:*}.py" "/opt/mdsemu/bin/${f#*:}"; \
    done; \
    /opt/mdsemu/bin/mdsemu --help >/dev/null

FROM ${BASE_IMAGE}
COPY --from=build /opt/mdsemu /opt/mdsemu
ENV PATH=/opt/mdsemu/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CEPH_CONF=/etc/ceph/ceph.conf \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
# A daemon runs as PID 1 (the entry point execs it) and stops cleanly on Docker's SIGTERM:
# an MDS first tells the monitor (down:dne, B10), which removes it at once.
ENTRYPOINT ["/opt/mdsemu/bin/mdsemu-entrypoint"]
CMD ["mdsemu", "--help"]
