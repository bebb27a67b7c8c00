# tlcourse — two commands do all the set-up:  `make course` (run every lesson in full mode)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
# quiet pip, minus the harmless "Location ... is ignored" lines some mirrors print
PIP_FILTER := 2>&1 | grep -v "^WARNING: Location" || true
# idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning made MiniLM steps 20x slower
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help setup assets status test lint unit course lab student nbgrader-validate clean

help:
	@echo "make course  - set up, fetch assets, execute every notebook in full mode (outputs saved in place)"
	@echo "make test    - set up, fetch assets, ruff, unit tests and every notebook in smoke mode (nbval)"
	@echo "make lab     - open JupyterLab on the notebooks"
	@echo "make status  - show the asset cache"
	@echo "make student - student copies in build/student/ and nbgrader source copies in build/nbgrader/source/"
	@echo "make nbgrader-validate - nbgrader validate every nbgrader source copy (smoke mode)"

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "== installing tlcourse and its dependencies into $(VENV) (first time: a few minutes)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]' $(PIP_FILTER)
	@$(PY) -c "import torch, torchvision, timm, transformers, datasets, peft, nbval, tlcourse" \
	  || { echo "error: the install is incomplete; see the pip messages above"; exit 1; }
	@$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	@touch $@

setup: $(VENV)/.installed

assets: setup
	@echo "== fetching course assets (idempotent; verified by sha256)"
	@$(PY) -m tlcourse.assets fetch

status: setup
	@$(PY) -m tlcourse.assets status

lint: setup
	$(PY) -m ruff check tlcourse tests notebooks
	$(PY) -m ruff format --check tlcourse tests

unit: assets
	$(PY) -m pytest tests -q

test: assets lint
	@echo "== unit tests + every notebook in smoke mode"
	TLCOURSE_SMOKE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1 \
	  $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -q -p no:cacheprovider

course: assets
	@echo "== executing $(words $(NOTEBOOKS)) notebooks in full mode (outputs saved in place)"
	@for nb in $(NOTEBOOKS); do \
	  echo "-- $$nb"; start=$$(date +%s); \
	  TLCOURSE_SMOKE=0 TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1 HF_HUB_DISABLE_PROGRESS_BARS=1 \
	    $(PY) -m jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	  echo "   done in $$(( $$(date +%s) - start )) s"; \
	  $(PY) -m tlcourse.nbclean "$$nb" || exit 1; \
	done
	@$(PY) -m tlcourse.results readme
	@echo "== results: results/*.json (one file per notebook) and the table in README.md"

lab: assets
	$(PY) -m jupyter lab notebooks/

# student copies to hand out as files, and nbgrader source copies (solutions + nbgrader metadata) for a course's source/
NBGRADER_SOURCE := build/nbgrader/source
student: setup
	$(PY) -m tlcourse.assign notebooks/ build/student/
	$(PY) -m tlcourse.assign --nbgrader notebooks/ $(NBGRADER_SOURCE)/
	@echo "== hand out build/student/*.ipynb, or copy $(NBGRADER_SOURCE)/<lesson>/ into your nbgrader course's source/ (docs/INSTRUCTORS.md)"

# nbgrader validate exits 0 even when a test cell fails, so its summary line is what decides; alembic must be on PATH
nbgrader-validate: student
	@for nb in $(NBGRADER_SOURCE)/*/*.ipynb; do \
	  out=$$(PATH="$(abspath $(VENV))/bin:$$PATH" TLCOURSE_SMOKE=1 TLCOURSE_RESULTS="$(abspath build/nbgrader/results)" \
	    $(PY) -m nbgrader validate --Execute.timeout=1800 "$$nb" 2>&1); \
	  if echo "$$out" | grep -q "^Success! Your notebook passes all the tests."; then echo "   passes  $$nb"; \
	  else echo "$$out"; echo "error: nbgrader validate failed on $$nb"; exit 1; fi; \
	done

clean:
	rm -rf build results/smoke
