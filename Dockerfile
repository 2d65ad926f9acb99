# One Dockerfile, two images:
#   docker build --target api .     the tracking API (no torch: small and quick to start)
#   docker build --target worker .  a training worker (torch with CUDA; runs on CPU too)
# The dashboard's one front-end dependency (ECharts), from the npm registry at build time.
FROM node:20-slim AS dashboard
WORKDIR /dashboard
COPY api/dashboard/package.json api/dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# Two distributions: the client (./pyproject.toml, the fitlens package; the trainer scores with
# fitlens.scoring and the worker reports through it) and the server (server/pyproject.toml).
COPY pyproject.toml README.md alembic.ini ./
COPY server server
COPY fitlens fitlens
COPY stack stack
COPY trainer trainer
COPY api api
COPY worker worker
COPY migrations migrations
COPY examples examples

FROM base AS api
COPY --from=dashboard /dashboard/node_modules/echarts/dist/echarts.min.js \
     api/dashboard/node_modules/echarts/dist/echarts.min.js
RUN pip install "." "./server[api]"
EXPOSE 8000
# Migrations run in their own one-shot service (see docker-compose.yml), hence --no-migrate.
CMD ["python", "-m", "api", "--host", "0.0.0.0", "--port", "8000", "--no-migrate"]

FROM base AS worker
RUN pip install ".[client]" "./server[worker]"
# One training job at a time: with one GPU per container, one job per GPU.
CMD ["celery", "-A", "worker.celery_app", "worker", "-Q", "gpu,cpu", "--concurrency", "1", "--loglevel", "INFO"]
