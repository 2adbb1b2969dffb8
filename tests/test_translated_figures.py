"""Translated figures (issue 20): a build in a language shows the image that the output's metadata holds
for it, rendered at the one English execution (book/_ext/translated_messages.py); an English build shows
the output itself. A tiny Sphinx project with myst-nb and the book's extension, in tmp_path, built from
an executed notebook (nothing executes): the diagram's output is the one ``diagrams.show`` makes.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import sys
from pathlib import Path

import nbformat
import pytest
from myst_nb.core.render import MimeData
from sphinx.application import Sphinx

from attnlab.course import diagrams

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import translated_messages  # noqa: E402

CJK = re.compile(r"[\u4e00-\u9fff]")
CONF = """
extensions = ["myst_nb", "translated_messages"]
nb_execution_mode = "off"
"""


def notebook(shown) -> nbformat.NotebookNode:
    """An executed notebook whose one cell displayed ``shown`` (as IPython would record it)."""
    bundle = shown._repr_mimebundle_()
    data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
    cell = nbformat.v4.new_code_cell("diagrams.show('masks')", execution_count=1, outputs=[
        nbformat.v4.new_output("display_data", data=data, metadata=metadata)])
    cell.metadata["mystnb"] = {"figure": {"name": "fig-masks", "caption": "The masks."},
                               "image": {"alt": "Three grids of cells."}}  # as the chapter's cell
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A page"), cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def build(folder: Path, nb, language: str) -> str:
    """The SVG that the built page shows (the file of its one <img>)."""
    src, out = folder / "src", folder / f"html_{language}"
    src.mkdir(exist_ok=True)
    (src / "conf.py").write_text(CONF, encoding="utf-8")
    nbformat.write(nb, src / "index.ipynb")
    app = Sphinx(str(src), str(src), str(out), str(folder / f"doctrees_{language}"), "html",
                 confoverrides={"language": language}, status=None, warning=None, freshenv=True)
    app.build()
    html = (out / "index.html").read_text(encoding="utf-8")
    images = re.findall(r'<figure[^>]*id="fig-masks">\s*<img alt="Three grids of cells." src="([^"]+)"', html)
    assert len(images) == 1 and "The masks." in html, html[-3000:]
    return (out / images[0]).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def shown():
    return diagrams.show("masks")


def test_the_chinese_build_shows_the_chinese_diagram_and_english_the_english(tmp_path, shown):
    nb = notebook(shown)
    english = build(tmp_path, nb, "en")
    chinese = build(tmp_path, nb, "zh_CN")
    assert english.strip() == shown.data.strip() and not CJK.search(english)
    assert chinese.strip() == shown.translations["zh_CN"].strip() and "填充掩码" in chinese
    # a language without a translation shows the English output
    assert build(tmp_path, nb, "fr").strip() == shown.data.strip()


def test_an_output_without_translations_is_unchanged(tmp_path, shown):
    """Without the metadata (a plot, or a cache executed before this change) every edition shows the output."""
    plain = diagrams.SVG(shown.data)
    assert build(tmp_path, notebook(plain), "zh_CN").strip() == shown.data.strip()


def test_a_plot_would_need_no_more_than_its_metadata(tmp_path):
    """The swap is by mime type: a PNG output (what the chapters' plots are) with a Chinese PNG in its
    metadata is shown in Chinese too (attnlab/course/figures.py puts it there, tests/test_translated_plots.py)."""
    import base64
    english, chinese = (base64.b64encode(f"PNG-{tag}".encode()).decode() for tag in ("en", "zh"))
    plot = {"image/png": english, "text/plain": "<Figure>"}
    nb = notebook(diagrams.SVG(""))
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data=plot, metadata={
        "attnlab": {"translations": {"zh_CN": {"image/png": chinese}}}})]
    src, out = tmp_path / "src", tmp_path / "html"
    src.mkdir()
    (src / "conf.py").write_text(CONF, encoding="utf-8")
    nbformat.write(nb, src / "index.ipynb")
    Sphinx(str(src), str(src), str(out), str(tmp_path / "doctrees"), "html", confoverrides={"language": "zh_CN"},
           status=None, warning=None, freshenv=True).build()
    image = re.search(r'<img[^>]*src="([^"]+)"', (out / "index.html").read_text(encoding="utf-8")).group(1)
    assert (out / image).read_bytes() == b"PNG-zh"


def test_translated_picks_the_language_and_mime_type():
    metadata = {"attnlab": {"translations": {"zh_CN": {"image/svg+xml": "<svg>中</svg>"}}}}
    data = MimeData("image/svg+xml", "<svg>en</svg>", output_metadata=metadata)
    assert translated_messages.translated(data, "zh_CN").content == "<svg>中</svg>"
    for language in ("en", "fr", None):
        assert translated_messages.translated(data, language) is data
    png = MimeData("image/png", "iVBOR", output_metadata=metadata)
    assert translated_messages.translated(png, "zh_CN") is png
    assert translated_messages.METADATA_KEY == diagrams.METADATA_KEY
    wrong = MimeData("image/svg+xml", "<svg/>", output_metadata={"attnlab": {"translations": {"zh_CN": {
        "image/svg+xml": {"not": "a string"}}}}})
    with pytest.raises(TypeError, match="zh_CN translation of a image/svg"):
        translated_messages.translated(wrong, "zh_CN")


def diagram_language_problems(edition: Path, labels: Path) -> list[str]:
    """Each diagram on its chapter's page of a built edition (e.g. _build/html/zh) shows exactly the
    lines of ``labels`` (e.g. labels.zh_CN.yml). For the edition's build test (tests/test_i18n.py), once
    the execution cache holds outputs made by this version of ``diagrams.show``."""
    problems = []
    for name, diagram in diagrams.DIAGRAMS.items():
        page = edition / "book" / f"{diagram.chapter}.html"
        if not page.is_file():
            problems.append(f"{name}: no page {page}")
            continue
        images = re.findall(rf'<figure[^>]*id="{diagram.figure}">\s*<img[^>]*src="([^"]+)"',
                            page.read_text(encoding="utf-8"))
        if len(images) != 1:
            problems.append(f"{name}: {len(images)} images in <figure id={diagram.figure!r}> on {page.name}")
            continue
        shown = ET.fromstring((page.parent / images[0]).read_text(encoding="utf-8"))
        lines = ["".join(t.itertext()) for t in shown.iter("{http://www.w3.org/2000/svg}text")]
        expected = [line for text in diagrams.texts(name, labels).values() for line in text.split("\n")]
        if sorted(lines) != sorted(expected):
            problems.append(f"{name}: the image on {page.name} is not drawn from {labels.name} "
                            f"(e.g. {sorted(set(lines) - set(expected))[:3]})")
    return problems


def test_an_edition_whose_diagrams_are_english_is_named(tmp_path):
    zh = ROOT / "book" / "diagrams" / "labels.zh_CN.yml"
    (tmp_path / "book" / "_images").mkdir(parents=True)
    for name, diagram in diagrams.DIAGRAMS.items():
        english = name == "qkv"  # one page left with the English diagram
        (tmp_path / "book" / "_images" / f"{name}.svg").write_text(
            diagrams.render(name, None if english else zh), encoding="utf-8")
        (tmp_path / "book" / f"{diagram.chapter}.html").write_text(
            f'<figure class="align-default" id="{diagram.figure}">\n<img alt="x" src="_images/{name}.svg" />',
            encoding="utf-8")
    problems = diagram_language_problems(tmp_path, zh)
    assert len(problems) == 1 and problems[0].startswith("qkv: the image on ch03_self_attention.html is not "
                                                         "drawn from labels.zh_CN.yml"), problems
    (tmp_path / "book" / "ch02_attention.html").unlink()
    assert any(p.startswith("masks: no page") for p in diagram_language_problems(tmp_path, zh))
