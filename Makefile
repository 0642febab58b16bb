# The two quick-start commands:  make demo  (install + main job)  and  make test  (install + tests).
# Everything goes into ./.venv, made from nothing on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kapre_fast-installed

.PHONY: demo test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Build requirements and TensorFlow first, then kapre_fast without build isolation, so the TF op
# library is compiled against the very TensorFlow it will run on (build-facts.md).
$(STAMP): $(BIN)/python pyproject.toml CMakeLists.txt $(shell find csrc kapre_fast -name '*.cc' -o -name '*.h' -o -name '*.cu' -o -name '*.py')
	$(BIN)/pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" ninja cmake "tensorflow==2.20.*" "keras>=3.10,<3.14"
	$(BIN)/pip install --quiet --no-build-isolation ".[tf,test,cli]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kapre-fast demo

test: $(STAMP)
	cd tests && ../$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build
