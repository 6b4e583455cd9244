# Symphonic gateway, production image: compiled JavaScript (npm run build) on Node 24 LTS.
# Debian 13 (trixie) has glibc >= 2.38, so the uWS glibc patch (scripts/fix-uws-glibc.mjs) is a
# no-op here; @btc-vision/uwebsockets.js 20.57.0 ships a binary for Node 24 (ABI 137).
#
#   docker build -t symphonic .
#   docker run -p 9001:9001 symphonic                      # embedded bus, one node
#   docker run -p 9001:9001 -e SYMPHONIC_bus__engine=nats -e SYMPHONIC_bus__nats__servers=nats://nats:4222 symphonic
#
# The demo page and /sdk/ are off in this image (SYMPHONIC_demo=false); set it to true to serve them.

FROM node:24-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY protocol ./protocol
COPY nats-kit ./nats-kit
COPY gateway ./gateway
COPY sdk ./sdk
RUN npm run build

FROM node:24-trixie-slim
WORKDIR /app
ENV NODE_ENV=production \
    SYMPHONIC_demo=false \
    PORT=9001
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# Read only when SYMPHONIC_demo=true.
COPY gateway/demo ./gateway/demo
# The admin page, served at /admin whatever SYMPHONIC_demo says (its API needs an admin key).
COPY gateway/admin/index.html ./gateway/admin/index.html
USER node
EXPOSE 9001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||9001)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM: the gateway closes its sockets (clients resume elsewhere) and exits; see docs/deploy.md.
STOPSIGNAL SIGTERM
# Node flags: gateway/node-flags.ts (why, and the figures).
CMD ["node", "--max-semi-space-size=4", "dist/server/main.mjs"]
