# One image for every Cascade process (origin/controller, relay). The mediasoup worker is
# built from Debian's libraries by the same script `npm start` uses; nothing is downloaded
# from outside the npm registry and Debian's archive. Every step must succeed: a failed
# worker build, install or compile stops the image build with that step's own output.
FROM node:20-bookworm
WORKDIR /opt/cascade
# The worker first, from its script alone: the slow build (4-7 minutes) stays cached in its
# layer while the sources change, and its compiler messages are shown when it fails.
COPY scripts/build-mediasoup-worker.sh scripts/
RUN bash scripts/build-mediasoup-worker.sh && rm -rf /root/.cache/cascade/mediasoup-worker-build
COPY . .
# Finds the worker above, installs the npm packages, builds.
RUN bash scripts/setup.sh run
RUN npm prune --omit=dev
ENV MEDIASOUP_WORKER_BIN=/root/.cache/cascade/mediasoup-worker-3.12.16/mediasoup-worker
# `npm start` binds loopback by default; a container's loopback reaches nobody, so the image listens on all interfaces.
ENV CASCADE_HTTP_HOST=0.0.0.0
EXPOSE 8080 8090
CMD ["node", "server/dist/main.js"]
