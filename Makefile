# typhoon's front door: every task is a thin wrapper over a script in scripts/ or an npm script.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_RUN := node --import tsx

.PHONY: help install run dev test test-node24 node24 typecheck build experiment bench bench-handlers doctor flame heap \
	soak chat blog blog-screenshot new-app check-new-app docs cluster-demo clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# npm ci when node_modules is missing or older than the lock file.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json ## Install dependencies (npm ci) if missing or stale

run: install ## Run the demo app: PORT=8888, PROCESSES=n (default one per CPU; 1 = single process)
	$(NODE_RUN) scripts/app.ts

dev: install ## The demo app in debug mode: a save reloads it (rolling, no failed request); PROCESSES=1 by default
	DEBUG=1 PROCESSES=$(or $(PROCESSES),1) $(NODE_RUN) scripts/app.ts

typecheck: install ## Type-check everything, specs included (tsc --noEmit), and the layers (no import cycles)
	npx tsc --noEmit
	npx depcruise core handlers --config .dependency-cruiser.cjs --output-type err-long

test: install typecheck ## Type-check and run the tap specs; ends with "N passed, N failed"
	node scripts/run-tests.mjs

# Node 24 (LTS) from the npm registry's `node` package, into a git-ignored folder, for test-node24.
NODE24_DIR := .node24
NODE24_BIN := $(NODE24_DIR)/node_modules/node/bin
$(NODE24_BIN)/node:
	npm install --prefix $(NODE24_DIR) --no-audit --no-fund --no-package-lock node@24

node24: $(NODE24_BIN)/node ## Install Node 24 from the npm registry into .node24/ (git-ignored)

test-node24: install typecheck node24 ## The same test run (specs and coverage) under Node 24 from .node24/
	PATH="$(CURDIR)/$(NODE24_BIN):$$PATH" node scripts/run-tests.mjs

build: install ## Compile core/ and handlers/ to dist/ (the published package)
	npm run build

experiment: install ## The seed's experiment: single process vs start(2) vs the thread executor
	$(NODE_RUN) scripts/experiment.ts

bench: install ## The benchmark suite, peers measured in the same run; writes bench-results/
	command -v wrk >/dev/null || (apt-get update && apt-get install -y --no-install-recommends wrk) || echo "wrk not installed: the start(2) rows use autocannon"
	$(NODE_RUN) scripts/bench/run.ts

bench-handlers: install ## Static files, compression and WebSocket echo beside express.static, node:http and ws
	$(NODE_RUN) scripts/bench/handlers.ts

doctor: install ## clinic doctor on the demo app (APP=, ROUTE=, DURATION=); report under .clinic/
	$(NODE_RUN) scripts/profile.ts doctor

flame: install ## clinic flame on the demo app (APP=, ROUTE=, DURATION=); report under .clinic/
	$(NODE_RUN) scripts/profile.ts flame

heap: install ## clinic heapprofiler on the demo app (APP=, ROUTE=, DURATION=); report under .clinic/
	$(NODE_RUN) scripts/profile.ts heap

soak: install ## Minutes of mixed load against start(2) with the executor (SOAK_SECONDS=)
	$(NODE_RUN) scripts/soak.ts

chat: install ## The chat example (WebSocket) on http://127.0.0.1:8888/
	$(NODE_RUN) scripts/chat/main.ts

blog: install ## Tornado's blog demo on http://127.0.0.1:8888/ (PGlite; DATABASE_URL=postgres://... for a server)
	$(NODE_RUN) scripts/blog/main.ts

blog-screenshot: install ## Headless Chromium walks the blog (sign-up, compose, view) and saves docs/blog.png
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)
	$(NODE_RUN) scripts/blog/walk.ts

new-app: install ## Create a standalone app on this checkout: make new-app NAME=myapp [DIR=../myapp] [TEMPLATE=api|site]
	@test -n "$(NAME)" || { echo "usage: make new-app NAME=myapp [DIR=../myapp] [TEMPLATE=api|site]" >&2; exit 2; }
	$(NODE_RUN) scripts/new-app.ts --name "$(NAME)" --dir "$(or $(DIR),../$(NAME))" --template "$(or $(TEMPLATE),api)"

check-new-app: install ## Generate an app into a temporary folder, run its make test and make run
	scripts/check-new-app.sh

docs: install ## Build the API reference from the TSDoc into docs/api/ (TypeDoc)
	npx typedoc

cluster-demo: install ## nginx on loopback before two start(2) instances: spread, client address, stop, reload
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update && apt-get install -y nginx)
	$(NODE_RUN) scripts/cluster-demo.ts

clean: ## Remove build output, reports and tap's cache
	rm -rf dist docs/api .clinic .tap .node24 node_trace.*.log
