# Seawall: `make demo` runs the main job on embedded defaults; `make test` installs what the
# tests need and runs them all; `make bench` measures and prints the figures in docs/benchmarks.md.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell $(PY) -c 'import hashlib,sys;print(hashlib.sha1(open("pyproject.toml","rb").read()).hexdigest()[:12])')
APT := DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages: the real peers the integration tests talk to (rspamd brings rspamc; nsd
# is the authoritative DNS server of the SPF, DKIM and DMARC tests; freeradius-utils brings
# radclient; chromium and chromium-driver drive the dashboard headless; nft and ipset check
# the walled set's export files) ...
TEST_DEBS := postfix swaks spamc rspamd rbldnsd clamav-daemon redis-server redis-sentinel nsd \
	freeradius-utils chromium chromium-driver nftables ipset
# ... and what the benchmarks compare against.
BENCH_DEBS := rspamd redis-server postfix swaks

.PHONY: venv demo test lint typecheck unit bench clean system-python bench-deps test-deps fuzz

system-python:
	@$(PY) -c 'import ensurepip, venv' 2>/dev/null || \
	  { $(SUDO) apt-get update -q && $(SUDO) $(APT) install python3-venv python3-dev; }

$(STAMP): pyproject.toml | system-python
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

# `make demo DEMO_SECONDS=N` stops after N seconds of the wave (exit 0); DEMO_ARGS passes
# more options (`seawall demo --help`), e.g. DEMO_ARGS="--state var/demo --transport http".
demo: venv
	$(BIN)/seawall demo $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS)) $(DEMO_ARGS)

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

unit: venv test-deps
	$(BIN)/pytest

test: lint typecheck unit

# Postfix is installed unconfigured: the tests run their own instances, never the system one.
define install_debs
	@for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "postfix postfix/main_mailer_type select No configuration" | $(SUDO) debconf-set-selections; \
	    $(SUDO) apt-get update -q && $(SUDO) $(APT) install $$missing; fi
endef

test-deps:
	$(call install_debs,$(TEST_DEBS))

bench-deps:
	$(call install_debs,$(BENCH_DEBS))

bench: venv bench-deps test-deps
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.serve
	$(BIN)/python -m bench.wave --seeds 7,11,23
	$(BIN)/python -m bench.replay --seed 7
	$(BIN)/python -m bench.campaigns --tracker
	$(BIN)/python -m bench.dnsbl --rounds 3 --concurrency 16,64,128 --sim-hours 1 --accuracy
	$(BIN)/python -m bench.clamav
	$(BIN)/python -m bench.redis
	$(BIN)/python -m bench.auth
	$(BIN)/python -m bench.auth_scan
	$(BIN)/python -m bench.auth_wave --seeds 7,11,23
	$(BIN)/python -m bench.loso --write-docs
	$(BIN)/python -m bench.summary

# Coverage-guided fuzzing (atheris) of the parsers and codecs, outside `make test`: every
# target for FUZZ_RUNS executions, seeded from tests/fuzz/corpus; prints executions, exec/s
# and crashes per target, and fails when anything crashed (the inputs land in .cache/fuzz).
FUZZ_RUNS ?= 1000000
FUZZ_JOBS ?= 1
fuzz: venv
	$(BIN)/python -m tests.fuzz.run --runs $(FUZZ_RUNS) --jobs $(FUZZ_JOBS) $(FUZZ_TARGETS)

clean:
	rm -rf $(VENV) .cache var .pytest_cache .mypy_cache .ruff_cache
