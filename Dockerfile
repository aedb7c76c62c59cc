# The operator's image:
#   docker build -t ghcr.io/hpc-user-operator/hpc-user-operator:0.1.0 .
# Node.js 24 is the Active LTS line; both stages use the same base.
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Runtime dependencies only; no install scripts run (none of them needs one).
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist/ dist/
COPY crds/ crds/
# Numeric, so that the kubelet can verify runAsNonRoot; matches the Deployment's runAsUser.
USER 65532:65532
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["run"]
