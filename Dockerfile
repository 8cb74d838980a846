# syntax=docker/dockerfile:1
# The edgelb sync agent as a small, non-root image:
#   docker build -t ghcr.io/edgelb/sync-agent:0.1.0 .
# Stage 1 bundles the TypeScript sources (the agent and the shared snapshot
# schema) into one ESM file; stage 2 installs production dependencies only;
# the final stage is distroless Node 20 running as uid 65532 ("nonroot").

ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Dev dependencies are needed for esbuild only; skip every install script
# except esbuild's binary download, which the bundle step needs.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild esbuild
COPY tsconfig.base.json tsconfig.json ./
COPY worker/snapshot ./worker/snapshot
COPY sync-agent ./sync-agent
# Dependencies stay external (resolved from node_modules at run time): pino
# loads its transports by module name in worker threads.
RUN npx esbuild sync-agent/main.ts --bundle --platform=node --format=esm --target=node20 \
      --packages=external --sourcemap --outfile=dist/edgelb-sync-agent.mjs

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM gcr.io/distroless/nodejs${NODE_VERSION}-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/package.json ./package.json
COPY --from=build /src/dist ./dist
USER 65532:65532
EXPOSE 9090
# The distroless entrypoint is `node`; arguments are the agent's flags.
ENTRYPOINT ["/nodejs/bin/node", "--enable-source-maps", "dist/edgelb-sync-agent.mjs"]
