PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint clean image test-containers

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/mdsemu demo

# `make test PYTEST_ARGS="-n 2 --dist loadgroup"` shares the tests between two pytest-xdist
# workers (a test module stays on one worker, so its module-scoped cluster is made once): about
# half the time on two cores. CI runs them one at a time, the way their timings were set.
PYTEST_ARGS ?=

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The container image, built without a registry (docs/containers.md); `make test` runs the
# container tests too, or says why it skips them.
image: $(STAMP)
	PYTHON=$(BIN)/python docker/build-image.sh

test-containers: $(STAMP)
	$(BIN)/python -m pytest -q tests/container

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
