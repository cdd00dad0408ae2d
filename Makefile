# make book  : create .venv, install, run the slow end-to-end tests, generate the demo data, execute and build the book
# make test  : create .venv, install, run the tests (all but the slow ones, under coverage)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU pins for this platform (torch and torchaudio builds that run together); `make CONSTRAINTS=` installs unpinned
CONSTRAINTS ?= constraints-cpu.txt
BOOK_FLAGS ?= -W -n --keep-going

.PHONY: install data test book full-check sync clean-book student screenshots mutation

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[book,test]"
	touch $(STAMP)

data: $(STAMP)
	$(PY) data_scripts/make_synthetic_twin.py

test: $(STAMP)
	$(PY) -m coverage run --source=bt_tutorial --data-file=$(VENV)/.coverage -m pytest -q --chapter-coverage

book: $(STAMP) data
	$(PY) -m pytest -q -m slow
	$(VENV)/bin/jupyter-book clean book
	$(PY) tools/book_cache.py
	BT_PROGRESS=0 BT_INTERACTIVE=0 HF_HUB_DISABLE_PROGRESS_BARS=1 $(VENV)/bin/jupyter-book build book $(BOOK_FLAGS)
	$(PY) tools/check_book.py

# chapters 1-7 in the full profile, offline: a twin served as a ds003020 mirror, tiny-wav2vec2 (about an hour)
full-check: $(STAMP)
	$(PY) tools/full_profile_book.py

# mutation testing of the modules behind the chapters' numbers, one module at a time against its own
# tests (tools/mutation_by_module.py; resumable: a second run continues); not part of CI
mutation: $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[mutation]"
	$(PY) tools/mutation_by_module.py

# after editing a chapter's .md, refresh its paired .ipynb (for Colab)
sync: $(STAMP)
	$(VENV)/bin/jupytext --sync book/[0-9]*.md

clean-book:
	rm -rf book/_build

# student notebooks: the chapters without exercise solutions (the book keeps them)
student: $(STAMP)
	$(PY) tools/make_student.py --out student

# screenshots of every built page (headless Chromium), to check figures and math render
screenshots: $(STAMP)
	$(PY) tools/screenshots.py
