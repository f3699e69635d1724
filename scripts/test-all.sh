#!/usr/bin/env bash
# The one test command (`npm test`): Python training tests, TypeScript type check, the service tests
# (HTTP, engine, few-shot, storage) and the browser end-to-end tests, then the classifier store suites again on
# PostgreSQL (scripts/test-postgres.sh starts a throw-away cluster; the multi-replica test runs there). On a clean machine it first
# installs what the tests need: the Python virtual environment (.venv, from training/requirements.txt)
# and Debian's chromium (as root, with apt; otherwise it says what to install).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv

step() { printf '\n==> %s\n' "$*"; }

step "Python virtual environment ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# Installs only what is missing; the first run downloads PyTorch (several GB with its CUDA libraries).
"$VENV/bin/pip" install --disable-pip-version-check -q -r training/requirements.txt
"$VENV/bin/pip" install --disable-pip-version-check -q --no-deps -e training

step "Python tests (training/)"
"$VENV/bin/python" -m pytest -q training/tests

step "TypeScript type check"
npx tsc -p tsconfig.json --noEmit

step "Browser for the end-to-end tests"
bash scripts/install-chromium.sh

step "Deployment tools (helm, k8s-validate) for the Helm chart tests"
# builds them into .cache/bin with Go on the first run (about 8 minutes on 2 cores), then reuses them
bash scripts/install-deploy-tools.sh

step "Service tests (node:test; classifier store on SQLite)"
mapfile -t files < <(find test -name '*.test.ts' | sort)
env -u CLMAE_TEST_DATABASE_URL node --import tsx --test --test-concurrency=1 "${files[@]}"

step "Classifier store suites again on PostgreSQL (a throw-away cluster unless CLMAE_TEST_DATABASE_URL is set)"
# shellcheck source=scripts/test-postgres.sh
source scripts/test-postgres.sh
trap stop_test_postgres EXIT
start_test_postgres
node --import tsx --test --test-concurrency=1 test/storage/*.test.ts test/http/routes/classifier*.test.ts test/fewshot/fit-runner.test.ts
