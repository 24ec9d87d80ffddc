# syntax=docker/dockerfile:1
# The durable-runbooks worker. TypeScript runs through tsx (a runtime dependency), so there is no build step:
# the image holds the sources, the production node_modules and the environment files.
# docker-compose.yml builds it as the `worker` service; test/docker-compose.test.ts checks both files agree.

# ---- dependencies: production node_modules, with the toolchain better-sqlite3 needs if no prebuilt binary fits
FROM node:20.19-bookworm-slim AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev keeps tsx: it is in `dependencies` because the worker runs TypeScript directly.
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime: no compilers, runs as the unprivileged `node` user (uid 1000)
FROM node:20.19-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json package-lock.json tsconfig.json ./
COPY --chown=node:node src ./src
COPY --chown=node:node environments ./environments
# evidence, the worker's evidence signing key and dual-write work files (volumes in docker-compose.yml): 0700
RUN mkdir -p /app/evidence /app/keys /app/work \
 && chown node:node /app/evidence /app/keys /app/work \
 && chmod 700 /app/evidence /app/keys /app/work

# Defaults for what src/worker/main.ts reads; docker-compose.yml (or `docker run -e`) overrides them.
# Secrets are never baked in: environment files name the variables (urlEnv, kubeconfigEnv) that carry them.
ENV TEMPORAL_ADDRESS=temporal:7233 \
    TEMPORAL_NAMESPACE=default \
    TEMPORAL_TASK_QUEUE=durable-runbooks \
    METRICS_PORT=9464 \
    ENVIRONMENTS_DIR=/app/environments \
    EVIDENCE_DIR=/app/evidence \
    WORKER_KEY_FILE=/app/keys/worker.key \
    LOG_LEVEL=info \
    UV_THREADPOOL_SIZE=64

USER node
EXPOSE 9464

# Healthy while the Prometheus endpoint answers; only checks the local port, so it works whatever host the
# worker binds to (publishing the port from the container needs the worker to listen on 0.0.0.0).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.METRICS_PORT || '9464') + '/metrics').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

CMD ["npx", "tsx", "src/worker/main.ts"]
