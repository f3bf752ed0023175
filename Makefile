# One command to set up and run the pipeline, one to set up and run the tests (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro repro-available test lint bench lock experiments ui push pull ci-repro stale

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

setup: $(VENV)/.installed            ## create .venv with the locked versions

repro: setup                         ## run the whole DVC pipeline (download -> report)
	dvc repro

repro-available: setup              ## run every stage whose data can be had (e.g. offline), then the report
	dvc repro --keep-going || true
	dvc repro --single-item report
	dvc status

# The DVC remote is .dvc/config's `storage` (a folder in ~/.cache/dltm); DLTM_DVC_REMOTE=<url> names another one
# for this checkout (kept in .dvc/config.local). Outputs and the run-cache travel together.
REMOTE = $(if $(DLTM_DVC_REMOTE),dvc remote add --local --force --default env "$(DLTM_DVC_REMOTE)" &&)

push: setup                          ## dvc push the outputs and the run-cache
	$(REMOTE) dvc push --run-cache

pull: setup                          ## dvc pull the outputs and the run-cache (what the remote lacks is skipped)
	$(REMOTE) dvc pull --run-cache --allow-missing

ci-repro: setup                      ## what CI does: pull, repro what changed, push, summary (.ci/repro)
	.ci/repro $(if $(PROFILE),--profile $(PROFILE)) $(if $(BASE),--base $(BASE)) $(if $(SUMMARY),--summary $(SUMMARY))

stale: setup                         ## list the stale committed results and mark them in reports/results.md
	python -m stages.report --stale

test: setup                          ## the test suite, as CI runs it (the JAX pass: tests/test_zz_jax_suite.py)
	python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder  # files in collection order: conftest.FIRST

lint: setup
	ruff check .

bench: setup                         ## benchmarks/ (see benchmarks/README.md)
	python -m benchmarks.tokenizer_throughput
	python -m benchmarks.kim_cnn_throughput
	python -m benchmarks.skipgram_throughput
	python -m benchmarks.startup
	python -m benchmarks.backends

# The experiments of this checkout beside the baseline, one row each: the seed and caps, the params that differ
# between rows, and the headline metric (Task.metric, named test_* or as before) of each task whose result differs.
# Every metric of two revisions: `dvc metrics diff <rev> <experiment>`; all 700 columns: `dvc exp show`.
experiments: SCORE = ([a-z0-9_]+_)?accuracy(_mean)?|mse_nn|mse_to_sine|prediction|bits_per_character|perplexity|bleu|rouge1|f1
experiments: HEADLINE = (train_|test_)?($(SCORE))|(word_index_)?matches_book|checks_passed
experiments: COMPARE = --md --no-pager --only-changed \
	--keep '^(Experiment|run\.(seed|max_epochs|max_train_examples))$$' \
	--drop '^[^:]*/[^:]*$$' --drop '^(metrics/[^:]+:)?(?!($(HEADLINE))$$)[^.:/]+$$'
experiments: setup                   ## print the experiments beside the baseline; also reports/experiments.md
	@{ echo '# Experiments'; echo; \
	  echo 'Written by `make experiments` (`dvc exp show --md`) from the experiments run in this checkout on top of'; \
	  echo 'the committed baseline: the seed and caps, then only the params and the headline metrics that differ.'; \
	  echo 'Machine, seeds and caps: see [results.md](results.md).'; echo; \
	  dvc exp show $(COMPARE); \
	} > reports/experiments.md
	@grep '^|' reports/experiments.md

# The MLflow UI on the store the stages log to (dltm.tracking.tracking_uri: MLFLOW_TRACKING_URI, else
# sqlite:///<root>/mlflow.db), with artifacts where they are logged: mlruns/ beside a local SQLite file.
UI_PORT ?= 5000
define UI_PY
import os
from dltm.tracking import local_store_path, repo_root, tracking_uri
uri = tracking_uri()
if uri.startswith(("http://", "https://")):
    print(f"MLFLOW_TRACKING_URI is a tracking server: its UI is {uri}")
    raise SystemExit(0)
db = local_store_path(uri) if uri.startswith("sqlite") else None
artifacts = db.parent / "mlruns" if db else repo_root() / "mlruns"
print(f"MLflow UI of {uri} (artifacts in {artifacts}): http://127.0.0.1:$(UI_PORT)", flush=True)
print("MLflow 3 opens experiments in its GenAI view: click 'Model training' at the top left once (the browser "
      "remembers it), or open http://127.0.0.1:$(UI_PORT)/#/experiments/<id>?workflowType=machine_learning", flush=True)
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # no GenAI job workers (7 processes)
os.execvp("mlflow", ["mlflow", "server", "--host", "127.0.0.1", "--port", "$(UI_PORT)", "--workers", "1",
                     "--backend-store-uri", uri, "--artifacts-destination", str(artifacts)])
endef
export UI_PY

ui: setup                            ## the MLflow UI on the project's store at http://127.0.0.1:5000 (UI_PORT=...)
	@python -c "$$UI_PY"

lock: setup                          ## refresh requirements.lock from the current environment
	{ echo '# Exact versions for a reproducible install: pip install -c requirements.lock -e ".[dev]"'; \
	  echo '# Regenerate after changing pyproject.toml: make lock'; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -iE '^(pip|setuptools|wheel)=='; } > requirements.lock
