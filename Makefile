# Two commands set everything up: `make test` and `make demo`.
# Both create .venv with CPython 3.10 when it is missing and reinstall hejax
# and its backend plugins whenever any pyproject.toml changes.

VENV      := .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.hejax-installed
PYPROJECTS := pyproject.toml $(wildcard backends/*/pyproject.toml)
PLUGINS   := $(patsubst %/pyproject.toml,-e %,$(wildcard backends/*/pyproject.toml))

.PHONY: test demo lint bench security clean-venv

# Find CPython 3.10: python3.10 on PATH, else through pyenv, else stop.
define find_python310
for c in python3.10 \
    "$$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10 \
    "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.10*/bin/python3.10; do \
  if "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' \
      >/dev/null 2>&1; then echo "$$c"; exit 0; fi; \
done; exit 1
endef

$(PY):
	@py="$$( $(find_python310) )" || { echo "hejax needs CPython 3.10: \
	install it (e.g. 'pyenv install 3.10') or put python3.10 on PATH."; \
	exit 1; }; \
	echo "creating $(VENV) with $$py"; "$$py" -m venv $(VENV)

$(STAMP): $(PY) $(PYPROJECTS)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]" $(PLUGINS)
	@touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q

# The main job: denoise the real CT slice pydicom ships, on OpenFHE ciphertexts.
demo: $(STAMP)
	@mkdir -p out
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/hejax denoise example \
	  --dose 2.5e4 --backend openfhe --out out/demo.dcm --figure out/demo.png

bench: $(STAMP)
	$(PY) bench/primitives.py

# Run the attacks of examples/security and rewrite the table in docs/security.md.
security: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) examples/security/run_all.py

clean-venv:
	rm -rf $(VENV)
