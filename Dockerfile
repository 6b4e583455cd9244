# Symphonic gateway. Debian 13 (trixie) has glibc >= 2.38, so the uWS glibc patch is a no-op here.
FROM node:20-trixie-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci --omit=dev --ignore-scripts=false && npm cache clean --force
COPY protocol ./protocol
COPY gateway ./gateway
COPY sdk ./sdk
EXPOSE 9001
USER node
CMD ["node", "--import", "tsx", "gateway/main.ts"]
