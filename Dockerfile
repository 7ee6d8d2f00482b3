# syntax=docker/dockerfile:1.7
#
# pgpilot images. One npm package, one image family:
#
#   docker build -t ghcr.io/pgpilot/pgpilot:0.1.0 .                                  # operator (default target)
#   docker build --target postgresql --build-arg PG_MAJOR=16 \
#                -t ghcr.io/pgpilot/postgresql:16.4 .                                # PostgreSQL instance image
#
# The operator image's ENTRYPOINT is `pgpilot` (node /app/dist/cli/main.js); the Helm chart runs it
# with args ["operator"] and configures it through PGPILOT_* environment variables.
#
# The instance image is `ghcr.io/pgpilot/postgresql:<version>` (the operator runs
# `<instanceImage.repository>:<spec.version>` for every PostgreSQL pod). It holds the PostgreSQL
# binaries plus the same dist/; its ENTRYPOINT is `pgpilot` and the StatefulSet's args are `instance`: the agent is PID 1, runs
# initdb / pg_basebackup / pg_rewind, supervises `postgres` directly, serves the instance API and
# archives WAL itself (archive_command / restore_command are /bin/sh handoffs to it). The backup
# CronJob and Jobs run the same image with args `backup` (pg_basebackup streamed to the store).
#
# Both run non-root with a read-only root filesystem under the restricted Pod Security profile;
# anything written goes to mounted volumes (/tmp emptyDir, the data PVC). The operator runs as
# UID/GID 65532 ("pgpilot", the chart's runAsUser); PostgreSQL pods run as UID/GID 26 ("postgres",
# POSTGRES_UID in src/builders/statefulset.ts).

# Node.js 24 LTS, the version the tests run on (scripts/ensure-node.sh pins the exact release).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------------------------
# builder: compile TypeScript to dist/, then drop dev dependencies.
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS builder
WORKDIR /src
ENV npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

# Dependencies first, so source edits do not invalidate the npm ci layer.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && test -f dist/cli/main.js \
 && npm prune --omit=dev

# ---------------------------------------------------------------------------------------------
# base: what both runtime images share (the non-root user, the app, the `pgpilot` command).
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS base
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.vendor="pgpilot" \
      org.opencontainers.image.url="https://github.com/pgpilot/pgpilot" \
      org.opencontainers.image.source="https://github.com/pgpilot/pgpilot" \
      org.opencontainers.image.documentation="https://github.com/pgpilot/pgpilot#readme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# A named user for UID 65532 (the operator's runAsUser).
RUN groupadd --system --gid 65532 pgpilot \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin pgpilot

WORKDIR /app
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps

COPY --from=builder --chown=root:root /src/package.json ./package.json
COPY --from=builder --chown=root:root /src/node_modules ./node_modules
COPY --from=builder --chown=root:root /src/dist ./dist
# The CRDs, as generated (the chart installs its own copy from charts/pgpilot/crds/).
COPY --chown=root:root crds ./crds

# `pgpilot` (the server command) and `kubectl-pgpilot` (the kubectl plugin, `kubectl pgpilot`) on PATH.
RUN printf '#!/bin/sh\nexec node /app/dist/cli/main.js "$@"\n' > /usr/local/bin/pgpilot \
 && printf '#!/bin/sh\nexec node /app/dist/cli/plugin/main.js "$@"\n' > /usr/local/bin/kubectl-pgpilot \
 && chmod 0755 /usr/local/bin/pgpilot /usr/local/bin/kubectl-pgpilot

# ---------------------------------------------------------------------------------------------
# postgresql: the instance image, ghcr.io/pgpilot/postgresql:<version>.
#   PG_MAJOR   - PostgreSQL major version from the PGDG apt repository (apt.postgresql.org).
#   PG_VERSION - optional minor pin, e.g. 16.4; the image tag must name the version it contains.
# ---------------------------------------------------------------------------------------------
FROM base AS postgresql
ARG PG_MAJOR=16
ARG PG_VERSION=
LABEL org.opencontainers.image.title="pgpilot-postgresql" \
      org.opencontainers.image.description="PostgreSQL ${PG_MAJOR} with the pgpilot instance agent as PID 1"

USER root
# initdb and libpq look the effective UID up in /etc/passwd: create "postgres" as UID/GID 26 before
# the packages would create it with a dynamic UID. Debian ships GID 26 as "tape"; move it aside.
RUN set -eux; \
    groupmod --gid 1026 tape; \
    groupadd --system --gid 26 postgres; \
    useradd --system --uid 26 --gid 26 --no-create-home --home-dir /var/lib/postgresql \
            --shell /bin/sh postgres; \
    install -d -o 26 -g 26 -m 0755 /var/lib/postgresql

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
        https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    . /etc/os-release; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list; \
    # No "main" cluster from the package scripts: the agent runs initdb itself, as postgres (26).
    install -d /etc/postgresql-common; \
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf; \
    apt-get update; \
    if [ -n "${PG_VERSION}" ]; then pkg="postgresql-${PG_MAJOR}=${PG_VERSION}*"; else pkg="postgresql-${PG_MAJOR}"; fi; \
    apt-get install -y --no-install-recommends "$pkg" "postgresql-client-${PG_MAJOR}"; \
    apt-get purge -y --auto-remove curl; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*; \
    /usr/lib/postgresql/${PG_MAJOR}/bin/postgres --version; \
    if [ -n "${PG_VERSION}" ]; then \
        /usr/lib/postgresql/${PG_MAJOR}/bin/postgres --version | grep -F " ${PG_VERSION}"; \
    fi; \
    # Default socket directory, owned by the agent's user (with a read-only root filesystem the
    # pod mounts a writable volume here or the agent points unix_socket_directories elsewhere).
    install -d -o 26 -g 26 -m 2775 /var/run/postgresql; \
    id postgres | grep -F 'uid=26(postgres) gid=26(postgres)'

# initdb, postgres, pg_basebackup, pg_rewind, pg_upgrade, ... on PATH.
ENV PG_MAJOR=${PG_MAJOR} \
    PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}

USER 26:26
WORKDIR /var/lib/postgresql
EXPOSE 5432
# The StatefulSet passes args ["instance"] (the same image family runs every role).
ENTRYPOINT ["node", "/app/dist/cli/main.js"]

# ---------------------------------------------------------------------------------------------
# operator (default target): ghcr.io/pgpilot/pgpilot:<version>.
# ---------------------------------------------------------------------------------------------
FROM base AS operator
LABEL org.opencontainers.image.title="pgpilot" \
      org.opencontainers.image.description="pgpilot: a Kubernetes operator for highly available PostgreSQL clusters"
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["operator"]
