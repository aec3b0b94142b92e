# hostmaint.libvirt: setup, tests and builds. `make test` is what CI runs (.ci/run).
#
# Every target runs with .venv/bin first on PATH and with ANSIBLE_CONFIG and ANSIBLE_COLLECTIONS_PATH
# set to absolute paths, so that ansible-*, molecule and pytest all see this tree as the collection
# hostmaint.libvirt through the symlink .build/ansible_collections/hostmaint/libvirt (scripts/setup).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.NOTPARALLEL:
.DEFAULT_GOAL := help

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
NAMESPACE := hostmaint
NAME := libvirt
PYTHON_VERSION := 3.11
VENV := $(ROOT)/.venv
BUILD := $(ROOT)/.build
DIST := $(BUILD)/dist
# ansible-test cannot run from the symlink: it takes os.getcwd(), which resolves symlinks to the
# repository root, whose path does not end in ansible_collections/<namespace>/<name>. It runs in
# this copy instead, refreshed by `make sanity` (see the sanity target).
SANITY_ROOT := $(BUILD)/sanity/ansible_collections/$(NAMESPACE)/$(NAME)

export PATH := $(VENV)/bin:$(PATH)
export VIRTUAL_ENV := $(VENV)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(BUILD)

.PHONY: bench bench-disk rates sim demo help setup unit sanity lint build integration lab-setup lab-setups test-lab-b test-faults soak molecule test lab lab-down clean

help:
	@echo "make setup        Debian packages, .venv, ansible-test's pip bootstrap, .build collection link"
	echo "make unit         pytest tests/unit"
	echo "make sanity       ansible-test sanity, every test, on Python $(PYTHON_VERSION) (no ignore file)"
	echo "make lint         ansible-lint (profile production)"
	echo "make build        build the collection into .build/dist, install it in a temporary folder, ansible-doc it"
	echo "make integration  pytest tests/integration (the tests bring the lab up)"
	echo "make test-faults  pytest tests/faults: faults injected into real runs, overlapping runs, cancellation, bad input;"
	echo "                  writes docs/FAULTS.md from the cases' results"
	echo "make molecule     molecule test --all (scenarios in extensions/molecule/)"
	echo "make test         all of the above, in that order, the lab brought up beside unit, sanity, lint and build;"
	echo "                  stops at the first failure"
	echo "make soak CYCLES=N [SEED=S]  N evacuate/restore cycles with a random fault each (outside CI)"
	echo "make bench        empty hv1 with virsh loops, evacuate.yml and the module ad hoc, 3 interleaved rounds;"
	echo "                  print medians, ratios, phases, probe gaps and the targets, write JSON; then the bench-disk row"
	echo "make bench-disk   move a running guest's 1 GiB disk (512 MiB of data) default -> spare on hv1 with virsh blockcopy --pivot"
	echo "                  and with disk_move ad hoc, 3 interleaved rounds; print medians, D/A, MiB/s, writer stalls, write JSON"
	echo "make rates        move two memory-dirtying guests hv2 <-> hv3 with virsh and the engine; count restarts and lost writes"
	echo "make sim          the fleet simulator (tests/sim): a roll of 50 hosts x 100 guests of 8 GiB at 10 and 25 GbE,"
	echo "                  per planner (the collection's own, serial, oVirt 2+2, VMware 8); no lab, outside CI"
	echo "make demo         build the lab, give hv1 four guests, evacuate hv1 with playbooks/evacuate.yml"
	echo "make lab          bring the lab up (tests/lab/lab up); make lab-down takes it down"

setup:
	@"$(ROOT)/scripts/setup"

# --ansible-unit-inject-only: pytest-ansible puts ANSIBLE_COLLECTIONS_PATH (.build) on sys.path;
# without it, it builds a collections/ tree of symlinks to everything in the repository root and
# points ANSIBLE_COLLECTIONS_PATH there for the test run.
PYTEST := python -m pytest --ansible-unit-inject-only -p no:cacheprovider

# two workers: the unit tests take half the time on the 2-core machine
unit: setup
	cd "$(ROOT)"
	$(PYTEST) -n 2 tests/unit

sanity: setup
	mkdir -p "$(SANITY_ROOT)"
	# What git would see (tracked and untracked files, less the ignored ones); the copy's own
	# tests/output (ansible-test's results) is gitignored, so it is kept.
	rsync -a --delete --exclude=/.git --filter=':- .gitignore' "$(ROOT)/" "$(SANITY_ROOT)/"
	cd "$(SANITY_ROOT)"
	# ANSIBLE_TEST_CONTENT_ROOT stops ansible-test from walking up to the repository's .git, where
	# `git ls-files` would list nothing under the ignored .build/ and every test would be skipped.
	env -u ANSIBLE_CONFIG -u ANSIBLE_COLLECTIONS_PATH ANSIBLE_TEST_CONTENT_ROOT="$(SANITY_ROOT)" \
		ansible-test sanity --python $(PYTHON_VERSION)

lint: setup
	cd "$(ROOT)"
	ansible-lint

build: setup
	cd "$(ROOT)"
	rm -rf "$(DIST)"
	mkdir -p "$(DIST)"
	ansible-galaxy collection build --force --output-path "$(DIST)"
	tarball="$$(echo "$(DIST)"/$(NAMESPACE)-$(NAME)-*.tar.gz)"
	installed="$$(mktemp -d)"
	trap 'rm -rf "$$installed"' EXIT
	# Only the temporary folder is a collection path from here on: ansible-galaxy would otherwise
	# find the collection already "installed" in .build, and ansible-doc would read it there.
	export ANSIBLE_COLLECTIONS_PATH="$$installed"
	# --no-deps: the dependencies (galaxy.yml) come from PyPI's ansible package in .venv, not from Galaxy
	ansible-galaxy collection install --offline --no-deps -p "$$installed" "$$tarball"
	ansible-doc -t module $(NAMESPACE).$(NAME).guest_info >/dev/null
	# Every module of the installed copy must be there and have documentation ansible-doc renders.
	ansible-doc --list_files -t module $(NAMESPACE).$(NAME) | tee "$$installed/modules.txt"
	if grep -v " $$installed/ansible_collections/$(NAMESPACE)/$(NAME)/plugins/modules/" "$$installed/modules.txt"; then
		echo "build: the modules above are not read from the installed copy" >&2
		exit 1
	fi
	grep -q "^$(NAMESPACE)\.$(NAME)\.guest_info " "$$installed/modules.txt"
	ansible-doc -t module $$(cut -d' ' -f1 "$$installed/modules.txt") >/dev/null
	echo "build: $$tarball installs, and ansible-doc renders its modules from the installed copy"

comma := ,

# KEEP_LAB=1 (make test) leaves the lab up for test-faults, which then uses it instead of building another.
# TESTS=FILES runs those test files only (make test splits them between its two labs).
# PREPARED_LAB=1 (make test) takes the lab lab-setup brought up and set up beside the checks that need none.
# (lab-setup has run the lab's lifecycle tests already: they take any lab down.)
LIFECYCLE := tests/integration/test_00_lab_lifecycle.py
integration: setup
	cd "$(ROOT)"
	$(if $(KEEP_LAB),HOSTMAINT_LAB_LEAVE_UP=1) $(if $(PREPARED_LAB),HOSTMAINT_LAB_PREPARED=1) \
		$(PYTEST) --durations=25 $(if $(PREPARED_LAB),--ignore=$(LIFECYCLE)) $(or $(TESTS),tests/integration)

# The lab's own lifecycle tests (they bring labs up and take them down), then the lab up and set up with
# playbooks/setup.yml as the lab tests' session fixture would (tests/integration/prepare_lab.py): make test runs
# this beside unit, sanity, lint and build.
lab-setup: setup
	cd "$(ROOT)"
	$(if $(LIFECYCLE),$(PYTEST) $(LIFECYCLE))
	python tests/integration/prepare_lab.py

# Uses the lab that is up (make test: the one integration left), else builds one; takes it down at the end,
# unless KEEP_LAB=1 (make test: the Molecule scenarios reuse it, from its saved state).
test-faults: setup
	cd "$(ROOT)"
	$(if $(KEEP_LAB),,trap 'tests/lab/lab down >/dev/null 2>&1 || true' EXIT)
	HOSTMAINT_LAB_KEEP=1 $(PYTEST) --durations=15 tests/faults
	python tests/faults/table.py

CYCLES ?= 200
SEED ?=
soak: setup
	cd "$(ROOT)"
	python tests/faults/soak.py --cycles "$(CYCLES)" $(if $(SEED),--seed "$(SEED)")

# The scenarios share one lab: the first builds it (or finds it up, as make test leaves it) and saves what
# playbooks/setup.yml left; each scenario starts from that saved state (`lab reset setup`, seconds). The lab goes
# down at the end. Each scenario's time goes to $(STAGE_LOG) (extensions/molecule/resources/create.yml, destroy.yml).
# SCENARIOS=a,b runs those scenarios only, in that order (make test splits them between its two labs).
SCENARIOS ?=
molecule: setup
	cd "$(ROOT)"
	trap 'tests/lab/lab down >/dev/null 2>&1 || true' EXIT
	export HOSTMAINT_STAGE_LOG="$${HOSTMAINT_STAGE_LOG:-$(STAGE_LOG)}"
	$(if $(SCENARIOS),for scenario in $(subst $(comma), ,$(SCENARIOS)); do molecule test -s "$$scenario"; done,molecule test --all)

# Every stage, timed: its start is printed, and at the end (passed or not) a table of the stages' times and of
# the Molecule scenarios' (scripts/stages.py). Two labs, one from this tree and one from a copy of it (LAB_B: its
# own .lab; its namespaces and veth prefixed b-, its subnet 10.231.77.0/24), each brought up and set up while unit,
# sanity, lint and build run; then each takes its share of the lab tests (lab A: its integration tests, the fault
# suite and its scenarios; lab B: the rest), side by side on the 2-core machine. Each saves what
# playbooks/setup.yml left; the Molecule scenarios start from it; each lab goes down at its end. Lab B's output is
# printed when it ends. The whole run must stay under 60 minutes.
STAGE_LOG := $(BUILD)/stages.tsv
CHECKS := unit sanity lint build
LAB_B := $(BUILD)/lab-b
TESTS_B := tests/integration/test_maintain.py tests/integration/test_roll.py tests/integration/test_progress.py \
	tests/integration/test_playbooks.py tests/integration/test_stay_and_capacity.py \
	tests/integration/test_maintenance_mark.py tests/integration/test_live_migrate.py \
	tests/integration/test_executor_faults.py tests/integration/test_lab_guest_faults.py
SCENARIOS_A := default,maintain,storage,tls
SCENARIOS_B := rolling_parallel,rolling_stay,rolling_upgrade,setup,two_clusters
test:
	cd "$(ROOT)"
	mkdir -p "$(BUILD)"
	: > "$(STAGE_LOG)"
	export HOSTMAINT_STAGE_LOG="$(STAGE_LOG)"
	python3 scripts/stages.py --run "$(STAGE_LOG)" setup $(MAKE) --no-print-directory setup
	# lab B's tree: what git tracks, as it is here; the tools and the guest image's cache are shared
	rm -rf "$(LAB_B)" && mkdir -p "$(LAB_B)/.cache"
	git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ "$(LAB_B)/"
	ln -s "$(VENV)" "$(LAB_B)/.venv" && mkdir -p .cache/lab && ln -s "$(ROOT)/.cache/lab" "$(LAB_B)/.cache/lab"
	$(MAKE) --no-print-directory -C "$(LAB_B)" setup >/dev/null
	# the labs come up while the checks that need no lab run; background work runs in a session of its own, so
	# that a failure stops all of it (the trap), and then both labs go down
	setsid $(MAKE) --no-print-directory lab-setups & preparing=$$!
	lab_b=
	trap 'for job in $$preparing $$lab_b; do kill -TERM -- -$$job 2>/dev/null || true; wait $$job 2>/dev/null || true; \
		done; python3 scripts/stages.py "$(STAGE_LOG)" || true; tests/lab/lab down >/dev/null 2>&1 || true; \
		(cd "$(LAB_B)" && HOSTMAINT_LAB_PREFIX=b- tests/lab/lab down >/dev/null 2>&1) || true' EXIT
	for stage in $(CHECKS); do
		python3 scripts/stages.py --run "$(STAGE_LOG)" "$$stage" $(MAKE) --no-print-directory "$$stage"
	done
	echo "== $$(date +%T) waiting for the labs to be set up"
	if ! wait $$preparing; then preparing=; cat "$(BUILD)"/lab-setup-*.log; exit 1; fi
	preparing=
	cat "$(BUILD)/lab-setup-a.log" "$(BUILD)/lab-setup-b.log"
	setsid $(MAKE) --no-print-directory test-lab-b > "$(BUILD)/lab-b.log" 2>&1 & lab_b=$$!
	echo "== $$(date +%T) lab B runs $(TESTS_B) and the scenarios $(SCENARIOS_B) (its output: $(BUILD)/lab-b.log)"
	# lab A: the other integration tests, the fault suite, its scenarios
	status=0
	python3 scripts/stages.py --run "$(STAGE_LOG)" integration-a $(MAKE) --no-print-directory integration \
		KEEP_LAB=1 PREPARED_LAB=1 TESTS="$(filter-out $(TESTS_B) $(LIFECYCLE),$(wildcard tests/integration/test_*.py))" \
		&& python3 scripts/stages.py --run "$(STAGE_LOG)" test-faults $(MAKE) --no-print-directory test-faults KEEP_LAB=1 \
		&& python3 scripts/stages.py --run "$(STAGE_LOG)" molecule-a $(MAKE) --no-print-directory molecule \
			SCENARIOS=$(SCENARIOS_A) || status=$$?
	echo "== $$(date +%T) lab A's stages ended ($$status); waiting for lab B"
	wait $$lab_b || status=$$?
	lab_b=
	echo "== lab B's output"
	cat "$(BUILD)/lab-b.log"
	if [ "$$status" != 0 ]; then exit "$$status"; fi
	echo "== $$(date +%T) make test passed"

# make test's background parts. lab-setups: lab A's setup (with the lab's lifecycle tests), then lab B's in its copy
# (after A: A builds the guest image they share). test-lab-b: lab B's integration tests, then its scenarios.
LAB_B_ENV := HOSTMAINT_LAB_PREFIX=b- HOSTMAINT_LAB_SUBNET=10.231.77.0/24
lab-setups:
	cd "$(ROOT)"
	python3 scripts/stages.py --run "$(STAGE_LOG)" lab-setup-a $(MAKE) --no-print-directory lab-setup \
		> "$(BUILD)/lab-setup-a.log" 2>&1
	cd "$(LAB_B)"
	$(LAB_B_ENV) python3 scripts/stages.py --run "$(STAGE_LOG)" lab-setup-b $(MAKE) --no-print-directory lab-setup \
		LIFECYCLE= > "$(BUILD)/lab-setup-b.log" 2>&1

test-lab-b:
	cd "$(LAB_B)"
	export $(LAB_B_ENV)
	python3 scripts/stages.py --run "$(STAGE_LOG)" integration-b $(MAKE) --no-print-directory integration \
		KEEP_LAB=1 PREPARED_LAB=1 TESTS="$(TESTS_B)"
	python3 scripts/stages.py --run "$(STAGE_LOG)" molecule-b $(MAKE) --no-print-directory molecule \
		SCENARIOS=$(SCENARIOS_B)

lab: setup
	cd "$(ROOT)"
	tests/lab/lab up

demo: setup
	cd "$(ROOT)"
	scripts/demo

# make bench ends with the disk row (bench-disk) on the same lab, in the same run.
bench: setup
	cd "$(ROOT)"
	python tests/bench/bench_evacuate.py
	python tests/bench/bench_disk.py

bench-disk: setup
	cd "$(ROOT)"
	python tests/bench/bench_disk.py

rates: setup
	cd "$(ROOT)"
	python tests/bench/rates.py

# The reference fleets of issue 19: 10-minute reboots, 1 minute of gates, half zero pages (the defaults).
sim:
	cd "$(ROOT)"
	python tests/sim/run.py --hosts 50 --guests-per-host 100 --memory-mib 8192 --nic-gbit 10 --nic-gbit 25 \
		--seeds 5 --jobs 2 --json "$(BUILD)/sim.json"

lab-down:
	cd "$(ROOT)"
	tests/lab/lab down

clean:
	rm -rf "$(BUILD)" "$(ROOT)/tests/output"
