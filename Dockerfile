# The operator's image: `docker build -t autozero:0.1.0.dev0 .` (the chart's appVersion)
# Multi-stage: the build stage makes a virtualenv with autozero and its dependencies, installed
# from requirements.lock (every version pinned, every file checked against its hash: the versions
# CI tests); the final stage copies only that venv onto the same base, and runs as a non-root user
# with no shell needed, so it works under the chart's readOnlyRootFilesystem and runAsNonRoot.
# PYTHON_IMAGE is the base; the test ground builds this file on a local Debian base with the same
# Python minor version (scripts/testground/images.py), since it has no registry to pull from.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The pinned dependencies first: this layer stays cached until the lock file changes.
COPY requirements.lock ./
RUN python -m venv /opt/autozero \
 && /opt/autozero/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY operator ./operator
# --no-deps: every dependency came from the lock; pip check proves the lock satisfies autozero.
RUN /opt/autozero/bin/pip install --no-deps --no-build-isolation . \
 && /opt/autozero/bin/pip check \
 && /opt/autozero/bin/python -m compileall -q /opt/autozero \
 && /opt/autozero/bin/autozero --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="autozero" \
      org.opencontainers.image.description="Scale worker groups to zero when idle, and back up when work arrives" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/autozero /opt/autozero
ENV PATH=/opt/autozero/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532: the conventional "nonroot" user id; the chart's securityContext uses the same. It needs a
# passwd entry: kopf names the operator after getpass.getuser(), which fails on an unknown uid.
RUN echo 'autozero:x:65532:65532:autozero:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'autozero:x:65532:' >> /etc/group
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["autozero"]
CMD ["operator"]
