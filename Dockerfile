# The playground app image: the same install step CI runs (pip install of this project).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PLAYGROUND_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
RUN pip install --upgrade pip && pip install . \
    && useradd --system --uid 10001 --home-dir /app playground \
    && mkdir -p /data && chown playground /data
USER playground

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"]
# Migrations run on start (PLAYGROUND_MIGRATE_ON_START defaults to true).
CMD ["playground", "serve", "--models", "/config/models.toml", "--host", "0.0.0.0", "--port", "8000"]
