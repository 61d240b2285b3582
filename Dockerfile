# opsml-server production image.
#
#   docker build -t opsml-server .
#   docker run -p 3000:3000 -e OPSML_TRACKING_URI=postgresql://... -e OPSML_STORAGE_URI=gs://... opsml-server
#
# Two stages: `build` installs the server and its production extras into a virtualenv;
# `runtime` copies only that virtualenv onto a clean slim base (no pip cache, no build
# tools, no tests). Configuration and secrets come from the environment at run time
# (see docs/CONTRACTS.md); nothing secret is baked in. tests/production/test_image.py runs
# the install and start steps below (it parses them from this file) in a fresh virtualenv.
#
# BASE_IMAGE is any Debian-based image with Python 3.11 and its venv module: the official slim
# image by default, your mirror's copy of it, or the stand-in `make image-base` builds from
# Debian packages where no registry can be reached (docker/build-base.sh).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# checkov:skip=CKV_DOCKER_7:the base is a build argument; its default above carries a version tag
FROM ${BASE_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/opsml-server
WORKDIR /src
# constraints.txt holds the exact releases the test suite passed with: the image never resolves
# a newer, untested one at build time.
COPY pyproject.toml README.md constraints.txt ./
# Dependencies first, in a layer of their own (an empty package stands in for app/), so a code
# change rebuilds only the last two layers: seconds instead of minutes.
RUN mkdir app && touch app/__init__.py \
    && /opt/opsml-server/bin/pip install --no-cache-dir -c constraints.txt '.[server,postgres,gcs,s3,azure]' \
    && rm -rf app
COPY app ./app
# The server itself; pip and setuptools leave the venv, as nothing at run time needs them.
RUN /opt/opsml-server/bin/pip install --no-cache-dir --no-deps --force-reinstall . \
    && /opt/opsml-server/bin/pip uninstall --yes --quiet pip setuptools


FROM ${BASE_IMAGE} AS runtime

LABEL org.opencontainers.image.title="opsml-server" \
      org.opencontainers.image.description="OpsML 2.x registry server (FastAPI, gunicorn)" \
      org.opencontainers.image.licenses="MIT"

# A fixed non-root uid/gid (the chart's runAsUser 10001); group 0 may write the working
# directory too, so the image also runs under an arbitrary uid (OpenShift style).
RUN groupadd --system --gid 10001 opsml \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /srv/opsml \
       --shell /usr/sbin/nologin opsml \
    && mkdir -p /srv/opsml \
    && chown 10001:0 /srv/opsml \
    && chmod 0775 /srv/opsml

COPY --from=build /opt/opsml-server /opt/opsml-server

ENV PATH=/opt/opsml-server/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=3000 \
    WEB_CONCURRENCY=2

# The embedded SQLite default (./opsml_data) lands here when no OPSML_TRACKING_URI is set;
# gunicorn's Prometheus directory goes to /tmp, the only other place the server writes.
WORKDIR /srv/opsml
USER 10001:10001
EXPOSE 3000

# No curl in slim: the interpreter we ship does the probe. /livez touches no dependency.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/livez', timeout=4)"]

# Port from PORT, workers from WEB_CONCURRENCY, timeouts from GUNICORN_*: app/gunicorn_conf.py.
CMD ["gunicorn", "-k", "uvicorn_worker.UvicornWorker", "--config=python:app.gunicorn_conf", "app.main:run_app(login=False)"]
