# syntax=docker/dockerfile:1
# The edgelb sync agent as a small, non-root image:
#   docker build -t ghcr.io/edgelb/sync-agent:0.1.0 .
# Stage "deps" installs the production dependencies from the lockfile; stage
# "build" bundles the TypeScript sources (the agent, the shared snapshot schema
# and client-node) into one ESM file with esbuild; the final stage is distroless
# Node 24 running as uid 65532 ("nonroot") with no shell and no package manager.

# Node 24 (LTS; Node 20 reached its end of life in April 2026). The node gate's hop costs
# less on it: its CPU per request at 1 connection fell from 247 to 204 µs and the added
# p50 from 0.28 to 0.22 ms (bench section 1g, which runs the gate on this release:
# bench/lib/image-node pins it and test/bench/image-node.test.ts keeps the two in step).
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only (client-node, pino, prom-client, commander, ...),
# exactly as locked; no install scripts run.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json ./
# Only esbuild is needed here, at the version the repository pins.
RUN npm install --global --no-audit --no-fund \
      "esbuild@$(node -p 'require("./package.json").devDependencies.esbuild')"
# client-node is bundled into the agent (below), so the build reads it.
COPY --from=deps /app/node_modules ./node_modules
COPY worker/snapshot ./worker/snapshot
# The snapshot schema parses source ranges (CIDRs) with the worker's own parser.
COPY worker/source-ranges ./worker/source-ranges
# The KV sink reads and writes the stored value's metadata as the worker does.
COPY worker/config/stored.ts ./worker/config/stored.ts
# The gate relays responses with the socket transport's HTTP/1.1 parser and chunked decoder.
COPY worker/transport/socket ./worker/transport/socket
COPY sync-agent ./sync-agent
# At start the agent's resident memory is mostly code: @kubernetes/client-node
# is ~970 ES modules (54 MB), which Node loads one by one with their source
# maps. Bundled into one file with whitespace and syntax minified, and a source
# map without sources, the agent starts ~40 MiB smaller (docs/production.md,
# "Sizing"). Other packages stay external; the banner gives the bundled
# CommonJS parts of client-node (node-fetch) the require() they call.
RUN esbuild sync-agent/main.ts --bundle --platform=node --format=esm --target=node24 \
      --external:commander --external:pino --external:pino-pretty --external:prom-client \
      --external:valibot --external:re2js \
      --banner:js="import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" \
      --minify-whitespace --minify-syntax --keep-names --sourcemap --sources-content=false \
      --outfile=dist/edgelb-sync-agent.mjs
# The node gate (deploy/gate), same image, its own entry point:
#   command: ["/nodejs/bin/node", "--enable-source-maps", "dist/edgelb-node-gate.mjs"]
RUN esbuild sync-agent/gate/main.ts --bundle --platform=node --format=esm --target=node24 \
      --packages=external --sourcemap --outfile=dist/edgelb-node-gate.mjs

FROM gcr.io/distroless/nodejs${NODE_VERSION}-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
# A heap cap makes V8 collect garbage before the container's memory limit is
# reached (uncapped, RSS runs 2-4x the live heap). Sized for the default
# 384Mi limit in deploy/deployment.yaml, which also sets it; see the sizing
# rule there before changing it. The young generation is bounded too: Node 22
# and later size it by the machine's memory (heap_size_limit is old space +
# 192 MiB on Node 24 against + 48 MiB on Node 20), which the heap cap does not
# cover. 8 MiB semi-spaces: at 5,000 Nodes x 5,000 Services on Node 24 peak
# RSS was 265-277 MiB with them against 295-304 with 16 MiB (bench section 3b).
# --optimize-for-size (ENTRYPOINT only; V8 refuses it in NODE_OPTIONS) peaked
# at 190-198 MiB but could not keep up: a settled agent probing 5,000 nodes
# used 161% of a core against 28%.
ENV NODE_OPTIONS="--max-old-space-size=192 --max-semi-space-size=8"
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/package.json ./package.json
COPY --from=build /src/dist ./dist
USER 65532:65532
EXPOSE 9090
# Arguments are the agent's flags, e.g. --cluster home --worker-url https://...
# Node flags (docs/production.md "Sizing"):
# - no --enable-source-maps: on Node 24 it holds the parsed map of the 2.6 MB
#   bundle, ~42 MiB of RSS at idle (9 MiB on Node 20); the map is in dist/, so
#   NODE_OPTIONS=--enable-source-maps turns it on to debug.
# - the two warnings silenced come from the bundled client-node's node-fetch@2
#   (url.parse) and whatwg-url@5 (the punycode builtin): lines in `kubectl
#   logs` nobody can act on.
ENTRYPOINT ["/nodejs/bin/node", "--disable-warning=DEP0040", "--disable-warning=DEP0169", "dist/edgelb-sync-agent.mjs"]
