# typhoon's front door: every task is a thin wrapper over a script in scripts/ or an npm script.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_RUN := node --import tsx

.PHONY: help install run test typecheck

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# npm ci when node_modules is missing or older than the lock file.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json ## Install dependencies (npm ci) if missing or stale

run: install ## Run the demo app (PORT=8888, PROCESSES=n)
	$(NODE_RUN) scripts/app.ts

typecheck: install ## Type-check everything, specs included
	npx tsc --noEmit

test: install typecheck ## Type-check and run the tap specs
	node scripts/run-tests.mjs
