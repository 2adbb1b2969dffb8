"""The project's legal and citation files: a fork or a teacher can see what they may do and how to cite.

Two licences (as d2l does): the book's prose and figures under CC BY-SA 4.0 (`LICENSE`), code under
MIT (`LICENSE-CODE`); the distribution declares MIT; every page of the book says both in its footer;
`NOTICE.md` names what the built book and the packages bring from others; `CITATION.cff` is valid
Citation File Format 1.2.0 (its required keys, with the types the schema asks for) and its version
is the distribution's; `CHANGELOG.md` has an entry for that version.
"""
from __future__ import annotations

import datetime
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _pyproject() -> dict:
    return tomllib.loads(_text("pyproject.toml"))


def test_two_licences_text_and_code():
    assert _text("LICENSE").startswith("Attribution-ShareAlike 4.0 International"), "LICENSE: the CC BY-SA 4.0 legal code"
    assert "Creative Commons Attribution-ShareAlike 4.0 International Public" in _text("LICENSE")
    code = _text("LICENSE-CODE")
    assert code.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in code
    project = _pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE-CODE"]


def test_readme_and_every_page_footer_state_the_licences():
    readme = _text("README.md")
    assert "## Licence" in readme and "CC BY-SA 4.0" in readme and "MIT" in readme
    footer = yaml.safe_load(_text("_config.yml"))["html"]["extra_footer"]
    assert "CC BY-SA 4.0" in footer and "MIT" in footer


def test_notice_names_what_we_ship_from_others():
    notice = _text("NOTICE.md")
    # What the offline build copies into the HTML, and the data behind the committed model.
    for shipped in ("MathJax", "Apache License 2.0", "CLDR", "Unicode License v3", "book/data/dates_cpu_small/",
                    "Font Awesome"):
        assert shipped in notice, f"NOTICE.md does not name {shipped}"
    assert (ROOT / "book" / "data" / "dates_cpu_small").is_dir(), "NOTICE.md names a model that is not there"
    assert "django-static-mathjax" in _text("book/_ext/offline_book.py"), "NOTICE.md says MathJax comes from there"


def test_citation_cff_is_valid_cff_1_2():
    cff = yaml.safe_load(_text("CITATION.cff"))
    # The keys CFF 1.2.0's schema requires, with their types.
    assert cff["cff-version"] == "1.2.0"
    assert isinstance(cff["message"], str) and cff["message"].strip()
    assert isinstance(cff["title"], str) and cff["title"].strip()
    authors = cff["authors"]
    assert isinstance(authors, list) and authors, "authors: a non-empty list"
    for author in authors:  # a person (family-names) or an entity (name)
        assert isinstance(author, dict) and (author.get("family-names") or author.get("name")), author
    # Optional keys we use, with the schema's types.
    assert cff["type"] in ("software", "dataset")
    assert isinstance(cff["date-released"], (datetime.date, str))
    datetime.date.fromisoformat(str(cff["date-released"]))
    spdx = cff["license"] if isinstance(cff["license"], list) else [cff["license"]]
    assert set(spdx) == {"CC-BY-SA-4.0", "MIT"}
    assert str(cff["version"]) == _pyproject()["project"]["version"], "CITATION.cff and pyproject.toml disagree on the version"
    unknown = set(cff) - {"cff-version", "message", "title", "authors", "type", "abstract", "version",
                          "date-released", "license", "keywords", "repository-code", "url", "doi",
                          "identifiers", "preferred-citation", "references", "contact", "commit"}
    assert not unknown, f"keys CFF 1.2.0 does not define: {unknown}"


def test_changelog_has_the_current_version():
    version = _pyproject()["project"]["version"]
    changelog = _text("CHANGELOG.md")
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M), \
        f"CHANGELOG.md has no entry '## [{version}] - YYYY-MM-DD'"
    assert "## [Unreleased]" in changelog
