# The two commands of README.md (book, test) and the smaller targets of README's "Other commands" and
# CONTRIBUTING.md. Each creates the virtual environment when it is missing.
PROFILE ?= cpu
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: book test unit regress regress-update regress-fixture browser-check clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[book,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

## main job: execute the notebooks with papermill (profile $(PROFILE)) and build the Jupyter Book
book: $(STAMP)
	$(PY) -m chromo book --profile $(PROFILE)

## tests: ruff, unit tests, the nbval regression of the smoke notebooks, every chapter on the toy-sized gpu
## profile, a smoke-profile book build and its browser check (skipped, and said so, when Debian's chromium
## cannot be installed)
test: $(STAMP)
	$(PY) -m ruff check chromo tests scripts
	$(PY) -m pytest -q tests
	$(MAKE) regress
	$(PY) -m chromo book --profile gpu-toy --no-build
	$(PY) -m chromo book --profile smoke
	$(PY) scripts/browser_check.py build/book-smoke/_build/html; rc=$$?; \
	  if [ $$rc -eq 2 ]; then echo "browser check SKIPPED: chromium unavailable"; else exit $$rc; fi

## the quick check while working: ruff and the unit tests not marked slow (no chapter executed, no book built)
unit: $(STAMP)
	$(PY) -m ruff check chromo tests scripts
	$(PY) -m pytest -q -m "not slow" tests

## the nbval regression of tests/regression (smoke profile; analysis chapters on the committed fixture)
regress: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-sanitize-with tests/regression/sanitize.cfg \
		--nbval-current-env tests/regression

## refresh the committed regression notebooks (after an intended change): the smoke chapters, with the
## analysis chapters reading the committed fixture (tests/regression/regress.yaml)
regress-update: $(STAMP)
	$(PY) -m chromo book --profile smoke --no-build
	$(PY) -m chromo.book.pipeline update-regression

## refresh the fixture itself (the smoke runs' feature files) when the feature format changes
regress-fixture: $(STAMP)
	$(PY) -m chromo book --profile smoke --no-build
	$(PY) scripts/make_regression_fixture.py

## headless Chromium opens every page of the cpu book (book/_build/html, after `make book`)
browser-check: $(STAMP)
	$(PY) scripts/browser_check.py book/_build/html --install

## remove generated books and the canvas cache (runs/, out/ and .venv/ are kept)
clean:
	rm -rf build book/_build .cache
