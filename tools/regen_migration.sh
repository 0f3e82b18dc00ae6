#!/usr/bin/env bash
# Regenerate alembic/versions/0001_initial_schema.py from the models (pre-release only: no
# installation has data yet, so the schema is one migration). After the first release, write
# a new revision instead.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/versions"
cp alembic/script.py.mako "$tmp/"
TOURNEE_VAR_DIR="$tmp/var" TOURNEE_DATABASE_URL="sqlite:///$tmp/regen.sqlite3" \
  .venv/bin/python - "$tmp" <<'PY'
import sys
from alembic import command
from server.migrate import alembic_config
tmp = sys.argv[1]
cfg = alembic_config()
cfg.set_main_option("version_locations", f"{tmp}/versions")
command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001",
                 version_path=f"{tmp}/versions")
PY
.venv/bin/ruff format -q "$tmp/versions/"*.py || true
mv "$tmp/versions/0001_initial_schema.py" alembic/versions/0001_initial_schema.py
echo "alembic/versions/0001_initial_schema.py regenerated"
