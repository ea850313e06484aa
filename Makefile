# The entry points of the README's quick start: `make repro`, `make test` (everything, as CI runs
# it) and `make test-fast` (without the tests marked slow).
# The virtual environment is created from pyproject.toml only when it is missing
# (or pyproject.toml changed since it was made).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: repro test test-fast mutation venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

test-fast: $(STAMP)
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
	rm -rf $(VENV)
