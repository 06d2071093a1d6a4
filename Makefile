# The two commands of the README:
#   make book   set everything up, execute every chapter, build the site into _build/html
#   make test   set everything up, then unit tests, nbval over every chapter, the book build with
#               warnings as errors, and a check of the built site in headless Chromium
# Both are idempotent: a second run reuses the virtual environment, the vendored JavaScript and
# (for `make book`) the execution cache.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SETUP  := $(VENV)/.installed
VENDOR := assets/site/vendor/.versions
AECORE := $(wildcard aecore/*.py aecore/js/*.js)

.PHONY: book test setup unit nbval build-strict site-check chromium clean

# Both builds write the student notebooks (solutions stripped, scripts/student_notebooks.py) to
# _build/student before building, and copy them into the site, which links them as downloads.
book: setup _build/.aecore-stamp
	rm -rf _build/html/reports _build/student
	$(BIN)/python scripts/student_notebooks.py chapters/*.ipynb --out _build/student --zip
	$(BIN)/jupyter-book build . -n --keep-going
	rm -rf _build/html/student && cp -r _build/student _build/html/student
	@bash scripts/check_execution.sh _build/html/reports
	@echo
	@echo "The book is built. Open: file://$(CURDIR)/_build/html/index.html"
	@echo "Student notebooks (solutions removed): $(CURDIR)/_build/html/student/"

test: setup chromium unit nbval build-strict site-check
	@echo "All tests passed."

setup: $(SETUP) $(VENDOR)

# torch goes first and pinned: an unpinned torch would download a multi-GB CUDA build.
$(SETUP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements.txt   # includes this package, editable
	$(BIN)/python -m pip check
	$(BIN)/python -c "import matplotlib.pyplot"   # warm the font cache once
	touch $@

$(VENDOR): scripts/vendor_js.sh
	bash scripts/vendor_js.sh

chromium:
	bash scripts/ensure_chromium.sh

# Editing aecore/ does not change a notebook's code, so the execution cache would not notice:
# clear it whenever aecore/ is newer than the last build.
_build/.aecore-stamp: $(AECORE)
	rm -rf _build/.jupyter_cache
	mkdir -p _build && touch $@

unit:
	$(BIN)/python -m pytest -q tests aecore --doctest-modules --ignore=tests/site -p no:cacheprovider

nbval:
	$(BIN)/python -m pytest -q --nbval-lax --nbval-current-env chapters/ -p no:cacheprovider

# Clearing the cache makes the build execute every chapter again (equivalent to `force`).
# --all: every page is rebuilt and every chapter executed, whatever an earlier `make book` left in _build/.
build-strict:
	rm -rf _build/.jupyter_cache _build/.aecore-stamp _build/html/reports _build/student
	$(BIN)/python scripts/student_notebooks.py chapters/*.ipynb --out _build/student --zip
	$(BIN)/jupyter-book build . -W -n --keep-going --all
	rm -rf _build/html/student && cp -r _build/student _build/html/student
	@bash scripts/check_execution.sh _build/html/reports
	mkdir -p _build && touch _build/.aecore-stamp

site-check:
	$(BIN)/python -m pytest -q tests/site -p no:cacheprovider

clean:
	rm -rf _build artifacts .pytest_cache
