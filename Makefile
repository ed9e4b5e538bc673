# The two commands of README.md. Both build .venv/ on first use (tools/setup_env.py reads pyproject.toml).
SHELL := /bin/bash
PY := .venv/bin/python
# Offline, CPU-friendly defaults for everything the kit starts.
export RAY_USAGE_STATS_ENABLED := 0
export RAY_AUTH_MODE := disabled
export MPLBACKEND := Agg
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export DS_BUILD_OPS := 0
# DeepSpeed JIT-builds a CPU comm op once (~90 s); keep it in the user cache so fresh clones reuse it.
export TORCH_EXTENSIONS_DIR ?= $(HOME)/.cache/acelib/torch_extensions
export VLLM_CPU_KVCACHE_SPACE ?= 2
export VLLM_CPU_NUM_OF_RESERVED_CPU ?= 0
export PIP_NO_WARN_SCRIPT_LOCATION := 1

# papermill parameters for `make train`, e.g. make train ARGS="-p steps 5 -p sampling uniform"
ARGS ?=
# `make serve`: the model to serve (a directory, a registry name, models:/<name>/<version>, runs:/<id>/<path>)
MODEL ?=
PORT ?= 8000

.PHONY: setup test test-unit train serve bench lab mlflow-ui clean-outputs
setup:
	@python3 tools/setup_env.py

test: setup
	$(PY) -m pytest -q

test-unit: setup
	$(PY) -m pytest -q -m "not integration"

# --log-output streams the notebook's own lines (one per learner step) to the terminal; engine logs go to files in
# the run directory. The notebook prints the closing report; the last line is the run's outcome as one JSON object
# (acelib.trainer.summary).
# The outcome file is removed first: a dry run or a failed run must not report (or attach its notebook to) the run
# before it, and it is passed after ARGS so the two lines below read the file this run wrote.
LAST_RUN := outputs/last_run.json
train: setup
	@rm -f $(LAST_RUN)
	$(PY) -m papermill notebooks/train.ipynb outputs/train.ipynb -k python3 --log-output --no-progress-bar $(ARGS) \
	  -p last_run_file $(LAST_RUN)
	@if [ -f $(LAST_RUN) ]; then $(PY) -m acelib.tracking outputs/train.ipynb $(LAST_RUN); \
	  else echo "(no $(LAST_RUN): a dry run writes no outcome, and the notebook is not attached to MLflow)"; fi
	@if [ -f $(LAST_RUN) ]; then $(PY) -m acelib.trainer.summary --json $(LAST_RUN); fi

# OpenAI-compatible API on 127.0.0.1:$(PORT) (vLLM); Ctrl-C stops it. More `vllm serve` flags: ARGS="-- --max-num-seqs 8"
serve: setup
	@test -n "$(MODEL)" || { echo "usage: make serve MODEL=<model directory | registry name | models:/<name>/<version>> [PORT=8000]"; exit 2; }
	$(PY) -m acelib.serve --model "$(MODEL)" --port $(PORT) $(ARGS)

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lab: setup
	.venv/bin/jupyter lab --allow-root --ip 127.0.0.1 --no-browser notebooks/

mlflow-ui: setup
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false .venv/bin/mlflow ui --host 127.0.0.1 --workers 1 \
	  --backend-store-uri sqlite:///outputs/mlflow.db --default-artifact-root outputs/mlartifacts
