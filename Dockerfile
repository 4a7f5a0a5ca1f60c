# One image per service: docker build --build-arg SERVICE=secretary -t workemon-secretary .
# SERVICE is one of secretary, guesser, system-analyst, communicator.
# The base stays node:20-bookworm-slim (the same Node major as development; it can be built offline here).
ARG NODE_IMAGE=node:20-bookworm-slim

# Every workspace's package.json (and nothing else), so the dependency layers below are rebuilt only when a
# manifest or the lockfile changes, whichever workspaces exist.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && tar -cf - package.json package-lock.json .npmrc libs/*/package.json services/*/package.json | tar -xf - -C /manifests

# Full install, then the root build limited to the libs and this one service (libs first, in workspace order),
# to dist/: another service's broken work in progress does not stop this image.
FROM ${NODE_IMAGE} AS build
# Optional: PEM certificates npm trusts besides Node's own list while it installs (a TLS-inspecting proxy or a
# registry with a private CA): --build-arg BUILD_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt)".
# Used by the two install stages only; the runtime image holds neither the certificates nor the argument.
ARG BUILD_CA_CERTS=
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN if [ -n "${BUILD_CA_CERTS}" ]; then printf '%s\n' "${BUILD_CA_CERTS}" > /tmp/build-ca.pem; export NODE_EXTRA_CA_CERTS=/tmp/build-ca.pem; fi \
 && npm ci --no-audit --no-fund
COPY tsconfig.base.json ./
COPY libs libs
COPY services services
# SERVICE declared only now: the install above does not depend on it, so the four images share its layer.
ARG SERVICE
# The outputs the runtime image takes, gathered into /out (one COPY there, one layer fewer per piece).
RUN npm run build --if-present -w libs/contracts -w libs/service-kit -w libs/llm -w "services/${SERVICE}" \
 && mkdir /out \
 && cp -a --parents libs/contracts/dist libs/service-kit/dist libs/llm/dist "services/${SERVICE}/dist" /out/

# Production dependencies of the one service (and of the workspace libs it links), nothing for dev.
FROM ${NODE_IMAGE} AS runtime-deps
ARG SERVICE
ARG BUILD_CA_CERTS=
RUN test -n "${SERVICE}" || (echo "build with --build-arg SERVICE=<secretary|guesser|system-analyst|communicator>" >&2; exit 1)
WORKDIR /app
COPY --from=manifests /manifests/ ./
# node-llama-cpp's prebuilt llama.cpp binaries come as optional packages for every platform and GPU (CUDA, Vulkan,
# ARM: about 620 MB). The local provider loads only the CPU build of this machine's architecture (getLlama with
# gpu: false, build: 'never' in libs/llm/src/local-wire.ts), so the others are removed here (all kept on an
# architecture this list does not know).
RUN if [ -n "${BUILD_CA_CERTS}" ]; then printf '%s\n' "${BUILD_CA_CERTS}" > /tmp/build-ca.pem; export NODE_EXTRA_CA_CERTS=/tmp/build-ca.pem; fi \
 && npm ci --omit=dev --no-audit --no-fund --workspace "services/${SERVICE}" --include-workspace-root=false \
 && npm cache clean --force \
 && case "$(uname -m)" in x86_64) cpu_build=linux-x64;; aarch64|arm64) cpu_build=linux-arm64;; armv7l) cpu_build=linux-armv7l;; *) cpu_build=;; esac \
 && for dir in node_modules/@node-llama-cpp/*; do \
      [ -n "$cpu_build" ] && [ -e "$dir" ] && [ "$(basename "$dir")" != "$cpu_build" ] && rm -rf "$dir"; true; \
    done

FROM ${NODE_IMAGE} AS runtime
ARG SERVICE
# V8's old space sized for a service (docs/operations.md, "Memory"): its live heap is 30-40 MB, and under V8's
# default limit (a share of the machine's memory) garbage piles up to 200-300 MB RSS. Its young generation capped
# at 8 MB semi-spaces (V8's default grows them to 16 MB during start-up: docs/operations.md, "Memory at start-up").
# Override with NODE_OPTIONS.
ENV NODE_ENV=production \
    SERVICE=${SERVICE} \
    NODE_OPTIONS="--max-old-space-size=128 --max-semi-space-size=8"
WORKDIR /app
COPY --from=runtime-deps /app ./
# Workspace libs resolve through node_modules/@workemon/* links to libs/<name>: their dist/ (the `default`
# export condition). The contracts' OpenAPI documents are read at runtime from dist/openapi/*.json, which the
# build writes from the YAML sources (no YAML parsing at start: docs/operations.md, "Memory at start-up").
COPY --from=build /out/ ./
# The versioned prompts the guesser and the system analyst read at start (prompts/<service>/<version>.md).
COPY --from=manifests /src/prompts prompts
# Non-root, by number: the official image's `node` user is uid 1000, and a numeric USER needs no passwd entry
# (so it works on any bookworm-based Node image). The only writable place: the secretary's embedded database
# when DATABASE_URL is unset.
# (and /app/data/models: the local LLM provider's downloads, a volume in compose).
RUN mkdir -p /app/data/models && chown -R 1000:1000 /app/data
USER 1000:1000
# Services listen on PORT; these are their defaults (docs/architecture.md).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const d={secretary:8000,guesser:8001,'system-analyst':8002,communicator:8003};fetch('http://127.0.0.1:'+(process.env.PORT||d[process.env.SERVICE])+'/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# exec: node is PID 1's replacement and receives SIGTERM for the graceful shutdown.
CMD ["sh", "-c", "exec node services/${SERVICE}/dist/main.js"]
