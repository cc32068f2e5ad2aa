# Release Conductor: one image for every role; the command picks it (`serve`, `worker`, `status`, ...).
#   docker build -t release-conductor .
#   docker run --rm -p 8080:8080 -e CONDUCTOR_REDIS_URL=... -e CONDUCTOR_WEBHOOK_SECRET=... release-conductor
#   docker run --rm --no-healthcheck -e CONDUCTOR_REDIS_URL=... release-conductor worker
# The HEALTHCHECK probes the intake on port 8080, so a container running another command (worker,
# status) needs --no-healthcheck under plain Docker. Kubernetes ignores HEALTHCHECK; the Helm chart
# sets its own probes.

# Builder and runtime must share one base: the venv's python is a link to the base image's interpreter.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Every dependency ships manylinux wheels for CPython 3.11, so the builder needs no compiler either.
RUN python -m venv /opt/conductor
COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
COPY simulator ./simulator
COPY demo ./demo
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/conductor/bin/pip install --no-cache-dir /wheels/release_conductor-*.whl \
    && /opt/conductor/bin/conductor --help >/dev/null

FROM ${PYTHON_IMAGE}
ARG CONDUCTOR_UID=10001
RUN groupadd --system --gid "${CONDUCTOR_UID}" conductor \
    && useradd --system --uid "${CONDUCTOR_UID}" --gid conductor --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin conductor
COPY --from=builder /opt/conductor /opt/conductor
ENV PATH=/opt/conductor/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/conductor
USER ${CONDUCTOR_UID}:${CONDUCTOR_UID}
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["conductor"]
CMD ["serve"]
