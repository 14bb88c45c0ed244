# syntax=docker/dockerfile:1
# One image for every Switchboard process in docker-compose.yml: the api (default CMD), the
# Temporal worker (`python worker.py`) and the one-shot migrate step (`alembic upgrade head`).
# The Python minor version must match pyproject's requires-python and the lock's --python-version
# (tests/unit/test_compose.py checks both).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
# Exactly the locked, hash-checked distributions: a changed or unlisted file fails the build.
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.lock

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 switchboard \
    && useradd --system --uid 10001 --gid switchboard --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin switchboard
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Owned by root: the service user can read the code but not change it.
COPY . .
USER switchboard:switchboard

EXPOSE 8000
# Liveness only (the process answers); compose's api service probes /readyz instead, and the
# worker and migrate services, which serve no HTTP, switch this check off.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["uvicorn", "api:app", "--host", "0.0.0.0", "--port", "8000", "--timeout-graceful-shutdown", "5"]
