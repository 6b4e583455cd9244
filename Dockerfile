# Symphonic gateway. Debian 13 (trixie) has glibc >= 2.38, so the uWS glibc patch is a no-op here.
FROM node:20-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci
COPY protocol ./protocol
COPY nats-kit ./nats-kit
COPY sdk ./sdk
RUN node scripts/build-sdk.mjs

FROM node:20-trixie-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci --omit=dev && npm cache clean --force
COPY protocol ./protocol
COPY nats-kit ./nats-kit
COPY gateway ./gateway
COPY sdk ./sdk
COPY --from=build /app/dist ./dist
EXPOSE 9001
USER node
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||9001)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--import", "tsx", "gateway/main.ts"]
