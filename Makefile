# Tournée — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help run serve test test-sqlite test-postgres lint typecheck bench-photos migrate demo clean

help: ## Show the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-16s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 tools/bootstrap_uv.py .tools

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups
	@touch $@

install: .venv/.synced ## Install everything (uv, Python dependencies) into .venv

run: .venv/.synced ## Install, migrate, seed the Québec City demo, serve http://127.0.0.1:8000
	.venv/bin/tournee run --demo

serve: .venv/.synced ## Serve without seeding demo data
	.venv/bin/tournee run

migrate: .venv/.synced ## Apply database migrations
	.venv/bin/tournee migrate

test: .venv/.synced ## Run the whole test suite (SQLite, then PostgreSQL when reachable)
	@$(MAKE) --no-print-directory test-sqlite
	@if [ "$$TOURNEE_REQUIRE_POSTGRES" = "1" ] || pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		$(MAKE) --no-print-directory test-postgres; \
	else echo "PostgreSQL not reachable on 127.0.0.1:5432: PostgreSQL run skipped (CI requires it)."; fi

test-sqlite: .venv/.synced ## The suite on SQLite
	TOURNEE_TEST_DATABASE=sqlite .venv/bin/pytest $(PYTEST_ARGS)

test-postgres: .venv/.synced ## The suite on PostgreSQL (127.0.0.1:5432)
	TOURNEE_TEST_DATABASE=postgresql .venv/bin/pytest $(PYTEST_ARGS)

lint: .venv/.synced ## ruff + mypy
	.venv/bin/ruff check server sync tests
	.venv/bin/ruff format --check server sync tests
	.venv/bin/mypy --strict sync

bench-photos: .venv/.synced ## Photo derivative time and memory for a 12 MP JPEG
	$(PY) bench/bench_photos.py

clean: ## Remove the virtualenv and local data (var/)
	rm -rf .venv .tools var
