# One image for every Cascade process (origin/controller, relay). The mediasoup worker is
# built from Debian's libraries by the same script `npm start` uses; nothing is downloaded
# from outside the npm registry and Debian's archive.
FROM node:20-bookworm
WORKDIR /opt/cascade
COPY . .
RUN bash scripts/setup.sh run && npm prune --omit=dev || true
ENV MEDIASOUP_WORKER_BIN=/root/.cache/cascade/mediasoup-worker-3.12.16/mediasoup-worker
EXPOSE 8080 8090
CMD ["node", "server/dist/main.js"]
