# Two commands for a newcomer: `make book` and `make test`. Both create .venv when it is missing
# or older than requirements.txt / pyproject.toml, so they work from a fresh clone.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv fonts book pdf exercises test lab clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

## The font the Chinese diagrams are drawn with (fonts-noto-cjk; installed with apt-get when run as root).
fonts:
	@$(BIN)/python tools/system.py fonts

## Build the book into _build/html (strict: warnings fail) and generate the student release in exercises/;
## then the Chinese edition into _build/html/zh/ (strict, from the catalogues in locales/ and the English
## build's executed chapters: nothing runs twice). Every page links to its counterpart in the other edition.
book: venv fonts exercises
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python tools/i18n.py build --lang zh_CN

## The whole book as one PDF per edition, _build/pdf/attention-from-scratch.pdf and
## attention-from-scratch.zh_CN.pdf: headless Chromium prints the built HTML (Debian's chromium package
## and, for the Chinese one, its fonts-noto-cjk; installed by the script when run as root).
pdf: book
	$(BIN)/python tools/book_pdf.py
	$(BIN)/python tools/book_pdf.py --lang zh_CN

## Generate exercises/ (English) and exercises_zh/ (prose from locales/zh_CN/LC_MESSAGES/exercises/) from solutions/ with nbgrader.
exercises: venv
	$(BIN)/python -m attnlab.course.release

## Run every test (the project's own, the checks against reference and mutants, the book build).
test: venv fonts
	$(BIN)/python -m pytest

## Open your copy of the exercises in JupyterLab: work/ gets a copy of each exercise not there yet,
## so regenerating exercises/ never touches your answers.
lab: venv
	@mkdir -p work
	@for d in exercises/ps*/; do n=$$(basename $$d); [ -e work/$$n ] || cp -r $$d work/$$n; done
	cd work && ../$(BIN)/jupyter lab

clean:
	rm -rf _build .pytest_cache
