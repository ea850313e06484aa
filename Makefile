# The entry points of the README's quick start: `make repro`, `make test` (everything, as CI runs
# it) and `make test-fast` (without the tests marked slow).
# The virtual environment holds exactly requirements/lock.txt (every package at one version, with
# its hashes), then the project itself. It is made anew when the lock changes; a change of
# pyproject.toml alone reinstalls only the project.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt

.PHONY: repro test test-fast test-lowest lock mutation venv clean-venv

venv: $(STAMP)

# The stamp is a copy of the lock the venv was made from: the venv is made anew only when the lock's
# content changed (`make lock` rewrites it even when nothing moved), and then from scratch, so that
# a package the lock no longer lists cannot linger.
$(VENV)/.locked: $(LOCK)
	cmp -s $< $@ || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV) \
		&& $(BIN)/python -m pip install --quiet --require-hashes -r $< && cp $< $@; }
	touch $@

# No build isolation: the build backend (setuptools, wheel) comes from the lock too.
$(STAMP): $(VENV)/.locked pyproject.toml
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

# The lock from pyproject.toml's ranges (the dev extra and the build backend included) for this
# Python, by the pip-compile pinned in requirements/tools.txt. Pins still within the ranges are
# kept; `make lock LOCK_FLAGS=--upgrade` moves every package to its newest allowed version.
TOOLS := .venv-tools
LOCK_FLAGS ?=

$(TOOLS)/.installed: requirements/tools.txt
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes -r requirements/tools.txt
	touch $@

COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS)/bin/pip-compile --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_FLAGS)

lock: $(TOOLS)/.installed
	$(COMPILE) --extra dev --build-deps-for editable --output-file $(LOCK) pyproject.toml
	$(TOOLS)/bin/python requirements/lowest.py > requirements/lowest.in
	$(COMPILE) --output-file $(LOWEST_LOCK) requirements/lowest.in

# The fast tests against the lower bound of every range in pyproject.toml (requirements/lowest.txt,
# from lowest.in), in a venv of their own. Not part of CI.
LOWEST := .venv-lowest
LOWEST_LOCK := requirements/lowest.txt

$(LOWEST)/.locked: $(LOWEST_LOCK)
	cmp -s $< $@ || { rm -rf $(LOWEST) && $(PYTHON) -m venv $(LOWEST) \
		&& $(LOWEST)/bin/python -m pip install --quiet --require-hashes -r $< && cp $< $@; }
	touch $@

$(LOWEST)/.installed: $(LOWEST)/.locked pyproject.toml
	$(LOWEST)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(LOWEST)/bin/python -m pip check
	touch $@

test-lowest: $(LOWEST)/.installed
	PATH="$(CURDIR)/$(LOWEST)/bin:$$PATH" $(LOWEST)/bin/python -m pytest -m "not slow"

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# ruff (pyflakes, import order, pycodestyle's errors, bugbear; [tool.ruff] in pyproject.toml) first.
test: $(STAMP)
	$(BIN)/ruff check .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/ruff check .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not slow"

# The mutation score of the method's core (docs/mutation.md): the metric, the losses, the triplet
# sampler, the evaluation, the model parts, and the training loop's resume and best-checkpoint rules.
MUTANTS := "agman.metrics.*" "agman.losses.*" "agman.data.triplets.*" "agman.evaluation.*" "agman.models.*" \
	"agman.training.loop.x_start_from__mutmut_*" "agman.training.loop.x_improves__mutmut_*"

mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,mutation]'
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mutmut run $(MUTANTS)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mutmut results --all true > mutants/results.txt || true

clean-venv:
	rm -rf $(VENV) $(TOOLS) $(LOWEST)
