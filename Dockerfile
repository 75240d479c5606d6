# The standalone gateway (`authsocket serve`) as an image: built here, run as a non-root user.
#   docker build -t authsocket .
#   docker run -p 8080:8080 -e AUTHSOCKET_JWKS_URL=... -e AUTHSOCKET_AUDIENCE=... authsocket
# packages/gateway/test/image.test.ts runs this file's final-stage COPY and RUN lines as written
# (no container runtime needed), so the image's install step cannot drift from what is tested.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY . .
RUN npm ci && npx tsc -b packages/gateway && npm run build -w packages/gateway/web

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# Every workspace's manifest (npm ci checks the lock file against all of them), then the built code.
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/packages/protocol/package.json packages/protocol/
COPY --from=build /src/packages/server/package.json packages/server/
COPY --from=build /src/packages/client/package.json packages/client/
COPY --from=build /src/packages/redis/package.json packages/redis/
COPY --from=build /src/packages/proxy/package.json packages/proxy/
COPY --from=build /src/packages/worker/package.json packages/worker/
COPY --from=build /src/packages/gateway/package.json packages/gateway/
COPY --from=build /src/packages/gateway/web/package.json packages/gateway/web/
COPY --from=build /src/packages/redux/package.json packages/redux/
COPY --from=build /src/packages/react/package.json packages/react/
COPY --from=build /src/bench/package.json bench/
COPY --from=build /src/tests/adversarial/package.json tests/adversarial/
COPY --from=build /src/packages/protocol/dist packages/protocol/dist
COPY --from=build /src/packages/server/dist packages/server/dist
COPY --from=build /src/packages/redis/dist packages/redis/dist
COPY --from=build /src/packages/proxy/dist packages/proxy/dist
COPY --from=build /src/packages/worker/dist packages/worker/dist
COPY --from=build /src/packages/gateway/dist packages/gateway/dist
COPY --from=build /src/packages/gateway/web/dist packages/gateway/web/dist
# Only what the gateway needs at run time: no dev dependencies, no install scripts.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --workspace packages/gateway
USER node
EXPOSE 8080
# SIGTERM drains: /healthz (readiness) 503 for --drain-delay, then 1001 to every socket; /livez is liveness.
ENV AUTHSOCKET_DRAIN_DELAY=5s AUTHSOCKET_SHUTDOWN_TIMEOUT=25s
CMD ["node", "packages/gateway/dist/cli.js", "serve"]
