"""The bibliography: every entry can be found, every citation has an entry, nothing is listed unread.

`book/references.bib` is read with pybtex (the parser sphinxcontrib-bibtex itself uses), so an entry
that would not render fails here in a second rather than in the strict build. The strict build
(`test_book.py`) then proves that every ``{cite}`` role resolves.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pybtex.database import parse_file

ROOT = Path(__file__).resolve().parents[1]
BIB = ROOT / "book" / "references.bib"
# arXiv identifiers since 2007: YYMM.NNNN (to 2014) or YYMM.NNNNN, optionally a version.
ARXIV = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")
# A DOI: the directory indicator 10., a registrant code, a slash, a suffix without spaces.
DOI = re.compile(r"^10\.\d{4,9}/\S+$")
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def _entries():
    return parse_file(str(BIB), bib_format="bibtex").entries


def _book_pages() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [ROOT / f"{f}.md" for f in files]


def _cited_keys() -> dict[str, list[str]]:
    """key -> the pages citing it."""
    cited: dict[str, list[str]] = {}
    for page in _book_pages():
        for match in CITE.finditer(page.read_text(encoding="utf-8")):
            for key in match.group(1).split(","):
                cited.setdefault(key.strip(), []).append(page.name)
    return cited


def test_the_config_points_at_the_bibliography():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["bibtex_bibfiles"] == ["book/references.bib"]
    assert (ROOT / "book" / "appD_references.md").read_text(encoding="utf-8").count("{bibliography}") == 1


@pytest.mark.parametrize("key", sorted(_entries()))
def test_every_entry_can_be_found(key):
    entry = _entries()[key]
    fields = {name.lower(): value for name, value in entry.fields.items()}
    for required in ("title", "year"):
        assert fields.get(required), f"{key}: no {required}"
    assert entry.persons.get("author"), f"{key}: no author"
    doi, eprint = fields.get("doi"), fields.get("eprint")
    if entry.type == "techreport" and not (doi or eprint):  # a lab's report (GPT, GPT-2): its address
        assert fields.get("url", "").startswith("https://") and fields.get("institution"), \
            f"{key}: a technical report without DOI or arXiv identifier needs its institution and an https url"
        return
    assert doi or eprint, f"{key}: neither a DOI nor an arXiv identifier; a reader cannot find it"
    if doi:
        assert DOI.match(doi), f"{key}: DOI {doi!r} is not of the form 10.NNNN/suffix"
        assert not doi.lower().startswith(("http", "doi:")), f"{key}: give the bare DOI, not {doi!r}"
    if eprint:
        assert fields.get("archiveprefix") == "arXiv", f"{key}: eprint without archiveprefix = {{arXiv}}"
        assert ARXIV.match(eprint), f"{key}: arXiv identifier {eprint!r} is not of the form YYMM.NNNNN"
        year = int(fields["year"])
        # A preprint precedes (or is in the year of) its publication, and arXiv ids start in 2007.
        assert 2007 <= 2000 + int(eprint[:2]) <= year, f"{key}: arXiv {eprint} does not fit year {year}"


def test_every_citation_has_an_entry_and_every_entry_is_cited():
    cited, entries = _cited_keys(), set(_entries())
    missing = {key: pages for key, pages in cited.items() if key not in entries}
    assert not missing, f"cited but not in book/references.bib: {missing}"
    unread = sorted(entries - set(cited))
    assert not unread, f"in book/references.bib but cited nowhere in the book: {unread}"


def test_the_key_papers_are_cited_where_they_are_taught():
    """The papers the issue names are cited on the chapter that teaches their idea."""
    cited = _cited_keys()
    where = {
        "bahdanau2015": "ch02_attention.md", "luong2015": "ch02_attention.md",
        "vaswani2017": "ch03_self_attention.md", "su2021": "ch05_positional.md",
        "press2022": "ch05_positional.md", "xiong2020": "ch06_transformer_block.md",
        "dao2022": "ch04_multihead.md",
    }
    for key, page in where.items():
        assert page in cited.get(key, []), f"{key} is not cited on {page}"
