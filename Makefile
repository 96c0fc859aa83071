# The two commands of the README's quick start: `make demo` and `make test`.
# Each one creates .venv (once, and again when pyproject.toml changes) before it runs; `make test` also creates
# .venv-ls, a separate virtualenv with the Label Studio server the tests start on 127.0.0.1 (it pins Django and many
# packages exactly, so it does not share seg's environment), and installs Debian's chromium and chromium-driver, the
# headless browser the web-search tests drive (as root, or through sudo).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
LS_VENV := .venv-ls
LS_STAMP := $(LS_VENV)/.installed
LABEL_STUDIO := label-studio==1.23.*

.PHONY: demo test lint chromium

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(LS_STAMP):
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LS_VENV)/bin/python -m pip install --quiet '$(LABEL_STUDIO)'
	touch $(LS_STAMP)

chromium:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; }

demo: $(STAMP)
	$(VENV)/bin/seg demo --out demo-output --overwrite

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint $(LS_STAMP) chromium
	$(VENV)/bin/pytest -n 2 -q
