# The two commands a new user needs: `make train` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test test-fast lint format clean

install: $(STAMP)

# Reinstalls only when pyproject.toml changes; the package itself is installed editable.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -c "import rolefusion.commands.train"
	@touch $@

train: install  ## Train the default experiment on the synthetic role-play scenes
	$(BIN)/rolefusion-train $(ARGS)

# Tests run on JOBS processes (one per core by default), each with a share of the cores; those
# marked `serial` first, alone, because their results depend on a thread count.
JOBS ?= auto

test: install  ## The whole test suite
	$(BIN)/python -m pytest -m serial
	$(BIN)/python -m pytest -m "not serial" -n $(JOBS) --dist loadfile

test-fast: install  ## Skip the tests marked slow
	$(BIN)/python -m pytest -m "not slow" -n $(JOBS) --dist loadfile

lint: install
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

format: install
	$(BIN)/ruff format src tests scripts
	$(BIN)/ruff check --fix src tests scripts

clean:  ## Remove the environment, caches and run outputs
	rm -rf $(VENV) outputs data .pytest_cache .ruff_cache src/*.egg-info
