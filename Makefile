# Entry points for people and CI. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The machine's Python 3.11; uv must never download an interpreter (it cannot, offline).
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := python3 -m uv
RUN := $(UV) run --frozen
# Where built binaries (control plane, helm, kubectl, base images) are cached, by version.
export CREDIT_MONITORING_CACHE ?= $(HOME)/.cache/credit-model-monitoring

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: .venv/.synced ## install everything: uv, Python dependencies, system packages
.venv/.synced: pyproject.toml uv.lock app/pyproject.toml operator/pyproject.toml store/pyproject.toml hack/localkube/pyproject.toml hack/localservers/pyproject.toml hack/demo/pyproject.toml
	@python3 -m uv --version 2>/dev/null | grep -q "$(UV_VERSION)" || python3 -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@bash hack/install-system-deps.sh
	@# Bytecode compiled once at install, as pip does in the images: otherwise, where
	@# PYTHONDONTWRITEBYTECODE is set, every process compiles its imports (Evidently: ~10 s).
	$(UV) sync --frozen --all-packages --compile-bytecode
	@touch $@

.PHONY: demo
demo: setup ## the whole product on this machine: API, operator, drift job, Prometheus, Alertmanager
	$(RUN) python -m demo $(ARGS)

.PHONY: serve
serve: setup ## run the credit API alone (SQLite prediction log by default)
	$(RUN) credit-api serve

.PHONY: test
test: setup lint typecheck ## every test: lint, types, unit, real servers, control plane, end to end
	$(RUN) pytest

.PHONY: test-fast
test-fast: setup ## unit tests only (no servers, no cluster, no images)
	$(RUN) pytest -m "not postgres and not prometheus and not cluster and not images and not browser and not e2e and not tilt"

.PHONY: lint
lint: setup ## ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

.PHONY: fmt
fmt: setup ## format and auto-fix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

.PHONY: typecheck
typecheck: setup ## mypy strict over every Python file: packages, tests, benchmarks, scripts
	$(RUN) mypy

# stdout is the `export KUBECONFIG=...` line alone (eval "$$(make local-cluster-up)"): setup's
# output goes to stderr and no recipe line is echoed.
.PHONY: local-cluster-up
local-cluster-up: ## a local Kubernetes cluster: control plane + one node (ARGS=--no-node: without)
	@$(MAKE) -s --no-print-directory setup >&2
	@$(RUN) localkube up $(ARGS)

.PHONY: local-cluster-down
local-cluster-down: ## stop the local cluster and put the host back as it was
	@$(MAKE) -s --no-print-directory setup >&2
	@$(RUN) localkube down

.PHONY: bench-api
bench-api: setup ## throughput and latency of the API against its baselines
	$(RUN) python app/bench/bench_api.py $(ARGS)

.PHONY: bench-api-instructions
bench-api-instructions: setup ## instructions per request (callgrind): bare, metrics, log, full
	$(RUN) python app/bench/bench_api.py --instructions $(ARGS)

.PHONY: bench-drift
bench-drift: setup ## drift job on 10k/100k/1M rows against plain Evidently, and with quality and fairness
	$(RUN) python operator/bench/bench_drift.py

.PHONY: bench-fairness
bench-fairness: setup ## false alarms of the fairness alert over 20 random relabellings of the data
	$(RUN) python operator/bench/bench_fairness.py

.PHONY: bench-operator
bench-operator: setup ## operator convergence time, resync writes and memory
	$(RUN) python operator/bench/bench_operator.py

.PHONY: images
images: setup ## build the app, operator and drift-job images with buildah (no Docker needed)
	bash hack/images/build.sh

.PHONY: tilt
tilt: setup ## tilt up on the local node (KUBECONFIG's, else its own; root, podman; docs/kind.md)
	$(RUN) python -m demo.tilt up $(ARGS)

.PHONY: tilt-ci
tilt-ci: setup ## tilt ci on the local node: every resource ready, traffic sent, exit 0
	$(RUN) python -m demo.tilt ci $(ARGS)

.PHONY: dev
dev: ## kind cluster + tilt up (needs Docker, kind and tilt on your machine)
	bash hack/kind/dev-up.sh

.PHONY: dev-down
dev-down: ## delete the kind cluster made by `make dev`
	bash hack/kind/dev-down.sh
