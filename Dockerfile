# syntax=docker/dockerfile:1
# One image recipe for the four services; each is a target that only sets its command:
#   docker build --target backend -t dsmr-backend .      (docker-compose.yml does this for you)
# All four share one Python distribution (dsmr-mqtt), so the builder runs once for all of them.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: wheels for the project and every dependency, installed into a venv ----------------
FROM ${PYTHON_IMAGE} AS builder
# gcc only for a dependency without a binary wheel for this platform (e.g. on a Raspberry Pi);
# none of it reaches the runtime image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared shared
COPY services services
COPY plugins plugins
RUN pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir --disable-pip-version-check \
        --no-index --find-links /wheels dsmr-mqtt

# --- runtime: python slim + the venv, as an unprivileged user ----------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# uid 10001 owns /data (each service's volume: database, spool, outbox). Named volumes take
# over this ownership when first created. Group dialout (gid 20) may open serial ports.
RUN useradd --system --uid 10001 --gid nogroup --groups dialout --home-dir /data --no-create-home dsmr \
    && mkdir -p /data \
    && chown dsmr:nogroup /data
COPY --from=builder /opt/venv /opt/venv
COPY docker/healthcheck.py /opt/dsmr/healthcheck.py
WORKDIR /data
USER 10001
# Healthy means: connected to the broker (the service's retained state topic says "online").
HEALTHCHECK --interval=60s --timeout=15s --start-period=30s --retries=3 \
    CMD ["python", "/opt/dsmr/healthcheck.py"]

FROM base AS datalogger
ENV DSMR_SERVICE=datalogger
CMD ["dsmr-datalogger"]

FROM base AS backend
ENV DSMR_SERVICE=backend
CMD ["dsmr-backend"]

FROM base AS pvoutput
ENV DSMR_SERVICE=pvoutput
CMD ["dsmr-pvoutput"]

FROM base AS plugins
ENV DSMR_SERVICE=plugins
CMD ["dsmr-plugins"]
