# hsqb - HubSpot workflow actions -> QuickBooks Online documents.
#
# One flat Makefile with explicit source lists. Objects go to $(BUILD)/ mirroring the
# source tree; -MMD -MP keeps header dependencies exact. The sanitizer build is the same
# graph in build-asan/ (make asan), so a plain build and an ASan build never mix objects.
#
#   make            build hsqb-worker and the dev-stack programs
#   make deps       install the Debian packages the build and tests need (idempotent)
#   make test       deps + build + every test tier; last line "N passed, N failed"
#   make asan       ASan+UBSan build, unit tests under it
#   make fuzz       short libFuzzer runs (FUZZ_SECONDS each, default 60), with dictionaries
#   make fuzz-merge fold the fuzzers' new inputs into tests/fuzz/seeds, minimised
#   make lint       cppcheck + clang-tidy + the compiler warnings
#   make fmt        clang-format -i over our sources
#   make demo       the main job end to end against the dev stack
#   make bench      the benchmark (not a test)
#   make kafka-dist Apache Kafka's broker jars (Maven Central, cached in ~/.m2)
#
# KAFKA=mock|apache picks the Kafka of `make stack`, `make demo` and `make bench`
# (default mock: librdkafka's mock cluster); the end-to-end and fault tiers of
# `make test` always run on Apache Kafka.

.DEFAULT_GOAL := all
SHELL := /bin/bash

CC       ?= cc
BUILD    ?= build
PKGS     := rdkafka libcurl json-c hiredis libcrypto libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN     := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-missing-field-initializers
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) $(SAN) -I. $(PKG_CFLAGS) -MMD -MP
LDLIBS_ALL = $(PKG_LIBS) -lpthread -lm
LDFLAGS  ?=

# ---- sources ------------------------------------------------------------------------
COMMON_SRCS := \
	common/log.c \
	common/clock.c \
	common/utf8.c \
	common/config.c \
	common/config_load.c \
	common/config_doc.c \
	common/money.c \
	common/tz.c \
	common/backoff.c \
	common/json.c \
	common/jtape.c \
	common/http.c \
	common/redis.c \
	common/hash.c \
	common/spare.c \
	common/seal.c

WORKER_SRCS := \
	worker/main.c \
	worker/settings.c \
	worker/atrest.c \
	worker/cmd_config.c \
	worker/event.c \
	worker/cmd_validate.c \
	worker/apierr.c \
	worker/metrics.c \
	worker/metrics_family.c \
	worker/metrics_render.c \
	worker/httpd.c \
	worker/guard.c \
	worker/ratelimit.c \
	worker/mapcache.c \
	worker/hubspot.c \
	worker/hubspot_batch.c \
	worker/hubspot_exchange.c \
	worker/hubspot_refresh.c \
	worker/hubspot_account.c \
	worker/hubspot_callbacks.c \
	worker/hubspot_oauth.c \
	worker/qbo.c \
	worker/qbo_company.c \
	worker/oauth.c \
	worker/oauth_credentials.c \
	worker/producer.c \
	worker/offsets.c \
	worker/scheduler.c \
	worker/consumer.c \
	worker/result.c \
	worker/resolve.c \
	worker/resolve_items.c \
	worker/resolve_refs.c \
	worker/resolve_query.c \
	worker/claim.c \
	worker/action.c \
	worker/pricing.c \
	worker/action_sales.c \
	worker/action_payment.c \
	worker/action_payment_rules.c \
	worker/keeper.c \
	worker/pipeline.c \
	worker/retry.c \
	worker/outcome.c \
	worker/delay.c \
	worker/breaker.c \
	worker/tenancy.c \
	worker/company.c \
	worker/cmd_replay.c \
	worker/cmd_run.c \
	worker/cmd_credentials.c \
	worker/ingress.c \
	worker/ingress_answer.c \
	worker/ingress_check.c \
	worker/ingress_event.c \
	worker/ingress_sign.c \
	worker/ingress_options.c \
	worker/options_fetch.c \
	worker/connect_state.c \
	worker/connect_page.c \
	worker/connect.c \
	worker/connect_qbo.c \
	worker/connect_hubspot.c \
	worker/connect_settings.c \
	worker/cmd_ingress.c \
	worker/callback_result.c \
	worker/callbacks.c \
	worker/actiondefs.c \
	worker/cmd_hubspot_actions.c

# Unit tests: one cmocka program per module, mirroring the source tree.
UNIT_TESTS := \
	tests/unit/common/test_log \
	tests/unit/common/test_config \
	tests/unit/common/test_money \
	tests/unit/common/test_tz \
	tests/unit/common/test_backoff \
	tests/unit/common/test_json \
	tests/unit/common/test_jtape \
	tests/unit/common/test_http \
	tests/unit/common/test_hash \
	tests/unit/common/test_seal \
	tests/unit/common/test_clock_utf8 \
	tests/unit/worker/test_event \
	tests/unit/worker/test_settings \
	tests/unit/worker/test_metrics \
	tests/unit/worker/test_offsets \
	tests/unit/worker/test_scheduler \
	tests/unit/worker/test_result \
	tests/unit/worker/test_callback_result \
	tests/unit/worker/test_pricing \
	tests/unit/worker/test_action_sales \
	tests/unit/worker/test_action_payment \
	tests/unit/worker/test_delay \
	tests/unit/worker/test_breaker \
	tests/unit/worker/test_mapcache \
	tests/unit/worker/test_ingress \
	tests/unit/worker/test_connect_state \
	tests/unit/worker/test_connect_page \
	tests/unit/worker/test_hubspot_actions

# Unit tests of sandbox parts link the sandbox object they test.
SANDBOX_UNIT_TESTS := \
	tests/unit/sandbox/test_qbo_query \
	tests/unit/sandbox/test_sb_json

# Component tests need a private redis-server (started by the test itself).
COMPONENT_TESTS := \
	tests/unit/common/test_redis \
	tests/unit/worker/test_ratelimit \
	tests/unit/worker/test_hubspot \
	tests/unit/worker/test_hubspot_refresh \
	tests/unit/worker/test_qbo \
	tests/unit/worker/test_oauth \
	tests/unit/worker/test_atrest \
	tests/unit/worker/test_resolve \
	tests/unit/worker/test_pipeline \
	tests/unit/worker/test_payment_pipeline \
	tests/unit/worker/test_consumer \
	tests/unit/worker/test_callbacks \
	tests/unit/worker/test_retry \
	tests/unit/worker/test_claim \
	tests/unit/worker/test_tenancy \
	tests/unit/worker/test_ingress_options \
	tests/unit/worker/test_connect

# Dev stack: the HubSpot + QuickBooks sandbox and the Kafka mock cluster host.
SANDBOX_SRCS := \
	tests/sandbox/main.c \
	tests/sandbox/server.c \
	tests/sandbox/sb_json.c \
	tests/sandbox/hubspot.c \
	tests/sandbox/hubspot_store.c \
	tests/sandbox/hubspot_props.c \
	tests/sandbox/hubspot_pricing.c \
	tests/sandbox/hubspot_actions.c \
	tests/sandbox/hubspot_oauth.c \
	tests/sandbox/workflows.c \
	tests/sandbox/workflows_admin.c \
	tests/sandbox/qbo.c \
	tests/sandbox/qbo_rules.c \
	tests/sandbox/qbo_store.c \
	tests/sandbox/qbo_txn.c \
	tests/sandbox/qbo_tax.c \
	tests/sandbox/qbo_currency.c \
	tests/sandbox/qbo_query.c \
	tests/sandbox/oauth.c \
	tests/sandbox/authorize.c \
	tests/sandbox/admin.c

KAFKA_MOCK_SRCS := \
	tests/kafka-mock/kafka_mock.c

FUZZ_TARGETS := \
	tests/fuzz/fuzz_event \
	tests/fuzz/fuzz_money \
	tests/fuzz/fuzz_tz \
	tests/fuzz/fuzz_pricing \
	tests/fuzz/fuzz_json \
	tests/fuzz/fuzz_options_request \
	tests/fuzz/fuzz_callback_result \
	tests/fuzz/fuzz_ingress_request \
	tests/fuzz/fuzz_connect_state \
	tests/fuzz/fuzz_headers

COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/%.o)
WORKER_OBJS := $(WORKER_SRCS:%.c=$(BUILD)/%.o)
WORKER_LIB_OBJS := $(filter-out $(BUILD)/worker/main.o,$(WORKER_OBJS))
COMMON_LIB  := $(BUILD)/libhsqbcommon.a
WORKER_LIB  := $(BUILD)/libhsqbworker.a
WORKER_BIN  := $(BUILD)/hsqb-worker
SANDBOX_BIN := $(BUILD)/hsqb-sandbox
KAFKA_MOCK_BIN := $(BUILD)/kafka-mock
INGRESS_LOAD_BIN := $(BUILD)/ingress-load
HTTP_COST_BIN := $(BUILD)/http-cost
ALLOC_COUNT_SO := $(BUILD)/alloc-count.so
UNIT_BINS   := $(UNIT_TESTS:%=$(BUILD)/%) $(SANDBOX_UNIT_TESTS:%=$(BUILD)/%)
COMPONENT_BINS := $(COMPONENT_TESTS:%=$(BUILD)/%)

# ---- build ----------------------------------------------------------------------------
.PHONY: all
all: $(WORKER_BIN) $(if $(SANDBOX_SRCS),$(SANDBOX_BIN)) $(if $(KAFKA_MOCK_SRCS),$(KAFKA_MOCK_BIN)) \
	$(INGRESS_LOAD_BIN) $(HTTP_COST_BIN) $(ALLOC_COUNT_SO)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(COMMON_LIB): $(COMMON_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(WORKER_LIB): $(WORKER_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(WORKER_BIN): $(BUILD)/worker/main.o $(WORKER_LIB) $(COMMON_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(SANDBOX_BIN): $(SANDBOX_SRCS:%.c=$(BUILD)/%.o) $(COMMON_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(shell pkg-config --libs libmicrohttpd)

$(KAFKA_MOCK_BIN): $(KAFKA_MOCK_SRCS:%.c=$(BUILD)/%.o) $(COMMON_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# HubSpot's side of the ingress at volume (signed requests over keep-alive connections).
$(INGRESS_LOAD_BIN): $(BUILD)/tests/bench/ingress_load.o $(COMMON_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# What one HTTP exchange and one wake-up cost the client (tests/bench/http_cost.c).
$(HTTP_COST_BIN): $(BUILD)/tests/bench/http_cost.o $(COMMON_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# The benchmark's allocation counter, preloaded into the replicas (tests/bench/alloc_count.c).
$(ALLOC_COUNT_SO): tests/bench/alloc_count.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -fPIC -shared -o $@ $<

$(BUILD)/tests/unit/sandbox/test_qbo_query: $(BUILD)/tests/unit/sandbox/test_qbo_query.o \
		$(BUILD)/tests/sandbox/qbo_query.o
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) -lcmocka

$(BUILD)/tests/unit/sandbox/test_sb_json: $(BUILD)/tests/unit/sandbox/test_sb_json.o \
		$(BUILD)/tests/sandbox/sb_json.o
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) -lcmocka

# Component tests that start a private redis-server share tests/unit/testutil_redis.c.
REDIS_TESTS := test_redis test_atrest test_claim test_tenancy test_ratelimit test_hubspot test_hubspot_refresh test_qbo test_oauth test_resolve test_pipeline test_payment_pipeline test_retry test_ingress_options test_callbacks test_connect
$(foreach t,$(filter-out test_redis,$(REDIS_TESTS)),$(BUILD)/tests/unit/worker/$(t)): \
	$(BUILD)/tests/unit/testutil_redis.o

$(BUILD)/tests/unit/common/test_redis: $(BUILD)/tests/unit/testutil_redis.o

# Component tests that run against the private sandbox share tests/unit/worker/sandbox_harness.c;
# the pipeline and result tests share tests/unit/worker/testutil_pipeline.c.
SANDBOX_HARNESS_TESTS := test_atrest test_tenancy test_hubspot_refresh test_oauth test_qbo test_resolve test_pipeline test_payment_pipeline test_retry test_ingress_options test_callbacks test_connect
$(SANDBOX_HARNESS_TESTS:%=$(BUILD)/tests/unit/worker/%): $(BUILD)/tests/unit/worker/sandbox_harness.o
# The tape reader of results is checked against the json-c reader it replaced.
$(BUILD)/tests/unit/worker/test_callback_result: $(BUILD)/tests/unit/worker/callback_result_dom.o
$(BUILD)/fuzz/fuzz_callback_result: tests/unit/worker/callback_result_dom.c
TESTUTIL_PIPELINE_TESTS := test_pipeline test_payment_pipeline test_result test_retry
$(TESTUTIL_PIPELINE_TESTS:%=$(BUILD)/tests/unit/worker/%): $(BUILD)/tests/unit/worker/testutil_pipeline.o

# Test programs link the worker library (when they test worker/) and the common one,
# after every object (shared test helpers included), so the helpers' references resolve.
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(WORKER_LIB) $(COMMON_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(filter-out %.a,$^) $(filter %.a,$^) $(LDLIBS_ALL) -lcmocka

.PHONY: unit-bins
unit-bins: $(UNIT_BINS) $(COMPONENT_BINS)

# ---- tests ----------------------------------------------------------------------------
# tests/run-tests drives every tier, counts test cases and prints the summary line.
.PHONY: test check unit
test: deps
	@$(MAKE) --no-print-directory all unit-bins kafka-dist browser-deps
	@BUILD=$(BUILD) tests/run-tests all

check: test

unit: unit-bins
	@BUILD=$(BUILD) tests/run-tests unit

# The main job end to end: dev stack, two worker replicas, a small realistic stream of
# events, a readable report of outcomes and of what now exists in the QBO sandbox.
.PHONY: demo
demo: deps
	@$(MAKE) --no-print-directory all $(if $(filter apache,$(KAFKA)),kafka-dist)
	@BUILD=$(BUILD) KAFKA=$(KAFKA) /usr/bin/python3 tests/demo/demo.py $(DEMO_ARGS)

# The dev stack (redis-server, kafka-mock, hsqb-sandbox) on private ports; addresses and
# HSQB_* settings in .stack/env. `make stack-down` stops exactly those processes.
.PHONY: stack stack-down
stack: deps
	@$(MAKE) --no-print-directory all $(if $(filter apache,$(KAFKA)),kafka-dist)
	@BUILD=$(BUILD) KAFKA=$(KAFKA) tests/stack/stack up

stack-down:
	@tests/stack/stack down

.PHONY: asan
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  all unit-bins kafka-dist browser-deps
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  BUILD=build-asan tests/run-tests unit component schema integration

# ---- dependencies ---------------------------------------------------------------------
# Every Debian package the build and all test tiers need. `make deps` checks with
# dpkg-query first and only runs apt-get (with one update) when something is missing.
# prometheus is there for its promtool (the repo tier checks the alerting rules); tzdata for
# /usr/share/zoneinfo (documents are dated in the company's time zone, common/tz.c);
# chromium for the browser test of the connect pages (tests/browser), with fonts-liberation,
# which chromium only recommends, so its screenshots have text without --install-recommends.
DEB_PACKAGES := build-essential pkg-config librdkafka-dev libcurl4-openssl-dev libjson-c-dev \
	libhiredis-dev libssl-dev libmicrohttpd-dev libcmocka-dev redis-server kcat \
	python3 python3-pytest python3-jsonschema python3-kafka python3-crc32c python3-redis \
	python3-yaml prometheus tzdata \
	clang libclang-rt-14-dev cppcheck clang-tidy clang-format gnuplot-nox chromium fonts-liberation

# Node.js runs the contract tests' npm clients; any Node 18-21 with npm will do, so
# Debian's packages are only installed when node or npm is missing.
NODE_PACKAGES := $(if $(shell command -v node 2>/dev/null),,nodejs) \
	$(if $(shell command -v npm 2>/dev/null),,npm)
# Java 17+ runs the Apache Kafka broker of the end-to-end tiers, Maven fetches it: any
# java and mvn on PATH will do, Debian's are installed only when they are missing.
JAVA_PACKAGES := $(if $(shell command -v java 2>/dev/null),,openjdk-17-jre-headless) \
	$(if $(shell command -v mvn 2>/dev/null),,maven)

.PHONY: deps
deps:
	@tests/install-deps $(DEB_PACKAGES) $(strip $(NODE_PACKAGES) $(JAVA_PACKAGES))

# ---- Apache Kafka -----------------------------------------------------------------------
# The broker's jars, as tests/kafka/pom.xml pins them, copied into $(BUILD)/kafka/libs.
# Maven downloads into ~/.m2 only what is not there yet (the first run: ~46 MB).
KAFKA ?= mock
KAFKA_DIST := $(BUILD)/kafka/libs/.complete

.PHONY: kafka-dist
kafka-dist: $(KAFKA_DIST)

$(KAFKA_DIST): tests/kafka/pom.xml
	@echo "kafka-dist: Apache Kafka's jars from Maven Central (cached in ~/.m2) -> $(BUILD)/kafka/libs"
	@rm -rf $(BUILD)/kafka/libs
	@mvn -q -B -f tests/kafka/pom.xml dependency:copy-dependencies \
	  -DoutputDirectory=$(abspath $(BUILD)/kafka/libs)
	@touch $@

# ---- the browser test's driver ------------------------------------------------------------
# playwright-core as tests/browser/package-lock.json pins it (npm registry; it downloads no
# browser: the tests drive Debian's /usr/bin/chromium). `npm ci` only when the lock changed
# or the package is missing; the stamp lives inside node_modules, which `npm ci` replaces.
BROWSER_STAMP := tests/browser/node_modules/.hsqb-lock.sha256

.PHONY: browser-deps
browser-deps:
	@want=$$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1); \
	if [ ! -f tests/browser/node_modules/playwright-core/package.json ] || \
	   [ "$$want" != "$$(cat $(BROWSER_STAMP) 2>/dev/null)" ]; then \
	  echo "browser-deps: npm ci in tests/browser (playwright-core, pinned)"; \
	  (cd tests/browser && npm ci --no-audit --no-fund --prefer-offline --loglevel=error) && \
	  echo "$$want" > $(BROWSER_STAMP); \
	fi

# The README's screenshots of the connect pages (tests/browser/screenshots/), taken by the
# browser test on the dev stack (mock Kafka: only the pages matter).
.PHONY: screenshots
screenshots: all browser-deps
	@BUILD=$(BUILD) KAFKA=mock HSQB_SCREENSHOTS=tests/browser/screenshots /usr/bin/python3 -m pytest \
	  -q -p no:cacheprovider tests/integration/test_connect_browser.py

# ---- quality --------------------------------------------------------------------------
FMT_FILES = $(wildcard common/*.[ch] worker/*.[ch] tests/unit/*.[ch] tests/unit/*/*.[ch] tests/sandbox/*.[ch] \
	tests/kafka-mock/*.[ch] tests/fuzz/*.c tests/bench/*.c)

# The benchmark (not a test): drain and open-loop runs against the dev stack, ratios to
# the ideal bound and to a one-in-flight-per-partition baseline. BENCH_ARGS passes options.
.PHONY: bench
bench: deps
	@$(MAKE) --no-print-directory all $(if $(filter apache,$(KAFKA)),kafka-dist)
	@BUILD=$(BUILD) KAFKA=$(KAFKA) /usr/bin/python3 tests/bench/bench.py $(BENCH_ARGS)

# Regenerate the generated docs (README configuration reference, example config).
.PHONY: docs
docs: all
	@BUILD=$(BUILD) /usr/bin/python3 tests/repo/update_docs.py

.PHONY: fmt lint
fmt:
	clang-format -i $(FMT_FILES)

# cppcheck alone (seconds; the repo test tier runs it), then clang-tidy (minutes).
.PHONY: cppcheck
cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --std=c11 --inline-suppr -I. --suppress=missingIncludeSystem $(COMMON_SRCS) $(WORKER_SRCS)

lint: all cppcheck
	clang-tidy --quiet $(COMMON_SRCS) $(WORKER_SRCS) -- -std=gnu11 -D_GNU_SOURCE -I. $(PKG_CFLAGS)

# ---- fuzz -----------------------------------------------------------------------------
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. $(PKG_CFLAGS)

# Kept after a run (not an intermediate make deletes): fuzz-merge and a re-run reuse it.
.PRECIOUS: $(BUILD)/fuzz/%
$(BUILD)/fuzz/%: tests/fuzz/%.c $(COMMON_SRCS) $(WORKER_LIB_OBJS:$(BUILD)/%.o=%.c)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

# Dictionaries (tests/fuzz/gen-dicts.py writes them from the schemas, the sandbox's seed
# data and the API references): a target without one runs without -dict.
FUZZ_DICT_fuzz_event := tests/fuzz/dicts/event.dict
FUZZ_DICT_fuzz_ingress_request := tests/fuzz/dicts/event.dict
FUZZ_DICT_fuzz_json := tests/fuzz/dicts/answers.dict
FUZZ_DICT_fuzz_options_request := tests/fuzz/dicts/answers.dict
FUZZ_DICT_fuzz_callback_result := tests/fuzz/dicts/answers.dict
FUZZ_DICT_fuzz_pricing := tests/fuzz/dicts/answers.dict
FUZZ_DICT_fuzz_headers := tests/fuzz/dicts/headers.dict

.PHONY: fuzz fuzz-merge
fuzz: deps
	@set -e; for t in $(notdir $(FUZZ_TARGETS)); do \
	  $(MAKE) --no-print-directory fuzz-run-$$t; \
	done

# One target: `make fuzz-run-fuzz_headers FUZZ_SECONDS=600`. New inputs go to the
# build's corpus; tests/fuzz/seeds/<target> is the kept corpus (read only here).
fuzz-run-%: $(BUILD)/fuzz/%
	@mkdir -p $(BUILD)/fuzz/corpus-$*
	@echo "fuzz: $* for $(FUZZ_SECONDS)s$(if $(FUZZ_DICT_$*), with $(FUZZ_DICT_$*))"
	@$< -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	  $(if $(FUZZ_DICT_$*),-dict=$(FUZZ_DICT_$*)) -print_final_stats=1 \
	  $(BUILD)/fuzz/corpus-$* tests/fuzz/seeds/$* 2>&1 | tail -n 12

# Fold the build's corpora into the kept seeds, minimised (-merge=1 keeps only inputs
# that add coverage), so the repository's corpus stays small.
fuzz-merge: deps
	@set -e; for t in $(notdir $(FUZZ_TARGETS)); do \
	  $(MAKE) --no-print-directory $(BUILD)/fuzz/$$t; \
	  rm -rf $(BUILD)/fuzz/merged-$$t; mkdir -p $(BUILD)/fuzz/merged-$$t $(BUILD)/fuzz/corpus-$$t; \
	  $(BUILD)/fuzz/$$t -merge=1 $(BUILD)/fuzz/merged-$$t tests/fuzz/seeds/$$t \
	    $(BUILD)/fuzz/corpus-$$t 2>&1 | tail -n 1; \
	  rm -rf tests/fuzz/seeds/$$t; mv $(BUILD)/fuzz/merged-$$t tests/fuzz/seeds/$$t; \
	  echo "fuzz-merge: $$t: $$(ls tests/fuzz/seeds/$$t | wc -l) inputs kept"; \
	done

.PHONY: clean
clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) build-asan -name '*.d' 2>/dev/null)

# `make print-VAR` prints a variable (tests/run-tests reads the test lists this way).
print-%:
	@echo $($*)
