# The operator's image: `docker build -t autozero:0.1.0.dev0 .` (the chart's appVersion)
# Multi-stage: the build stage makes a virtualenv with autozero and its dependencies; the final
# stage copies only that venv onto the same pinned base, and runs as a non-root user with no
# shell needed, so it works under the chart's readOnlyRootFilesystem and runAsNonRoot.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY operator ./operator
RUN python -m venv /opt/autozero \
 && /opt/autozero/bin/pip install --upgrade pip \
 && /opt/autozero/bin/pip install . \
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
# 65532: the conventional "nonroot" user id; the chart's securityContext uses the same.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["autozero"]
CMD ["operator"]
