"""The book's diagrams (attnlab/course/diagrams.py): well-formed SVG whose every word comes from the
label file, the same bytes on every render, labels that fit, and each diagram shown by its chapter
as a named figure with a caption and alt text. No book build: the chapters are read as text.

Each check is shown to fail on something broken (a label file with a changed word, a missing or
unused label, an overlong label, a translation that drops a placeholder, a chapter cell without alt text,
a Chinese label left in English, a missing CJK font).

The Chinese labels (labels.zh_CN.yml) are measured with Noto Sans CJK SC (fonts-noto-cjk), which must be
installed; how the zh edition shows them is tested in tests/test_translated_figures.py.
"""
from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jupytext
import pytest
import yaml

from attnlab import TransformerConfig
from attnlab.course import diagrams

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
SVG_NS = "{http://www.w3.org/2000/svg}"
NAMES = sorted(diagrams.DIAGRAMS)


@pytest.fixture(scope="module")
def svgs() -> dict[str, str]:
    return {name: diagrams.render(name) for name in NAMES}


def svg_texts(svg: str) -> list[str]:
    """The content of every <text> element, in document order."""
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


def expected_lines(name: str, labels=None) -> list[str]:
    """Every line of every label of the diagram, sizes filled in."""
    return [line for text in diagrams.texts(name, labels).values() for line in text.split("\n")]


# ----------------------------------------------------------------------------------------------
# The SVG

@pytest.mark.parametrize("name", NAMES)
def test_renders_well_formed_svg(svgs, name):
    root = ET.fromstring(svgs[name])  # raises on malformed XML
    assert root.tag == f"{SVG_NS}svg", root.tag
    width, height = (float(root.get(a).removesuffix("pt")) for a in ("width", "height"))
    assert 200 < width <= 600 and 150 < height <= 600, f"{name}: {width} x {height} pt"
    assert not re.search(r"""(href|src)=["']https?:""", svgs[name]), f"{name} refers to something on the network"
    assert "<image" not in svgs[name], f"{name} embeds a raster image"


@pytest.mark.parametrize("name", NAMES)
def test_text_is_exactly_the_labels_of_the_file(svgs, name):
    shown = collections.Counter(svg_texts(svgs[name]))
    expected = collections.Counter(expected_lines(name))
    assert shown == expected, (f"{name}: text not from the label file {sorted((shown - expected).elements())}, "
                               f"labels not shown {sorted((expected - shown).elements())}")


@pytest.mark.parametrize("name", NAMES)
def test_one_font_and_one_size(svgs, name):
    styles = re.findall(r'<text style="([^"]*)"', svgs[name])
    sizes = {re.search(r"font-size: ([^;]+)", s).group(1) for s in styles}
    families = {re.search(r"font-family: ([^;]+)", s).group(1) for s in styles}
    assert sizes == {f"{diagrams.FONT_SIZE}px"}, f"{name}: font sizes {sizes}"
    assert len(families) == 1 and "DejaVu Sans" in families.pop(), f"{name}: font families {families}"


def test_swapping_the_label_file_swaps_the_text(tmp_path, svgs):
    """A pseudo-translation (every line bracketed) replaces every word of every diagram."""
    english = diagrams.load_labels()
    bracketed = {d: {k: "\n".join(f"[{line}]" for line in str(t).split("\n")) for k, t in labels.items()}
                 for d, labels in english.items()}
    path = tmp_path / "labels.xx.yml"
    path.write_text(yaml.safe_dump(bracketed, allow_unicode=True), encoding="utf-8")
    assert diagrams.translation_problems(path) == []
    for name in NAMES:
        shown = svg_texts(diagrams.render(name, path))
        assert shown and all(t.startswith("[") and t.endswith("]") for t in shown), (name, shown)
        assert collections.Counter(shown) == collections.Counter(expected_lines(name, path))
        assert sorted(t[1:-1] for t in shown) == sorted(svg_texts(svgs[name])), name


@pytest.mark.parametrize("name", NAMES)
def test_renders_are_identical(svgs, name):
    assert diagrams.render(name) == svgs[name], f"{name}: two renders differ"
    assert "<dc:date>" not in svgs[name], f"{name}: the SVG carries a date"


def test_a_chapter_keeps_its_backend_and_figures():
    """A diagram leaves pyplot alone: a chapter's later plt.show() still shows its plot (inline backend),
    and no figure of the diagram is left open for the backend to show a second time."""
    code = ("import matplotlib; matplotlib.use('pdf'); import matplotlib.pyplot as plt; plt.figure(); "
            "from attnlab.course import diagrams; diagrams.show('qkv')._repr_svg_(); "
            "assert matplotlib.get_backend() == 'pdf', matplotlib.get_backend(); "
            "assert plt.get_fignums() == [1], plt.get_fignums()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_changed_render_is_seen():
    """The determinism check compares bytes: a label that changes changes them."""
    labels = diagrams.load_labels()
    changed = {**labels, "masks": {**labels["masks"], "keys": "keys!"}}
    assert diagrams.render("masks", changed) != diagrams.render("masks")


# ----------------------------------------------------------------------------------------------
# The labels

@pytest.mark.parametrize("name", NAMES)
def test_labels_fit_their_boxes_and_do_not_collide(name):
    assert diagrams.draw(name).problems() == [], name


@pytest.mark.parametrize("name, key", [("encoder_decoder", "enc_ffn"), ("qkv", "q_shape"), ("masks", "keys")])
def test_an_overlong_label_is_caught(name, key):
    labels = diagrams.load_labels()
    long = {**labels, name: {**labels[name], key: "a label that a translation made far too long to fit anywhere"}}
    problems = diagrams.draw(name, long).problems()
    assert any("far too long" in p for p in problems), problems


def test_every_label_is_used_and_none_is_missing():
    labels = diagrams.load_labels()
    extra = {**labels, "qkv": {**labels["qkv"], "unused": "drawn nowhere"}}
    with pytest.raises(ValueError, match="unused"):
        diagrams.render("qkv", extra)
    missing = {**labels, "qkv": {k: v for k, v in labels["qkv"].items() if k != "softmax_op"}}
    with pytest.raises(KeyError, match="softmax_op"):
        diagrams.render("qkv", missing)


def test_label_file_covers_the_diagrams_and_nothing_else():
    assert set(diagrams.load_labels()) == set(diagrams.DIAGRAMS)


def test_sizes_come_from_the_library_defaults(svgs):
    config = TransformerConfig(src_vocab_size=1, tgt_vocab_size=1)
    sizes = diagrams.values()
    assert sizes["d_model"] == config.d_model and sizes["h"] == config.num_heads
    assert sizes["d_head"] == config.d_model // config.num_heads
    assert sizes["kv_per_token"] == 2 * config.num_decoder_layers * config.d_model
    head_split = svg_texts(svgs["heads"])
    assert f"(B, {config.num_heads}, L, {config.d_model // config.num_heads})" in head_split
    assert f"head {config.num_heads - 1}" in head_split


def test_every_translation_has_the_english_ids_and_placeholders():
    translations = sorted(p for p in (BOOK / "diagrams").glob("labels.*.yml") if p != diagrams.LABELS)
    for path in translations:
        assert diagrams.translation_problems(path) == [], path


def test_a_faulty_translation_is_named():
    labels = diagrams.load_labels()
    faulty = {**labels, "heads": {**labels["heads"], "q_shape": "(B, L, 512)"}}  # typed instead of {d_model}
    del faulty["heads"]["w_o"]
    faulty["extra"] = {}
    problems = diagrams.translation_problems(faulty)
    assert "heads.w_o is missing" in problems, problems
    assert any(p.startswith("heads.q_shape: placeholders") for p in problems), problems
    assert "diagram 'extra' is not one of the course's" in problems, problems


# ----------------------------------------------------------------------------------------------
# The chapters

SHOW = re.compile(r"""diagrams\.show\(\s*["'](\w+)["']""")


def chapter_problems(book: Path) -> list[str]:
    """Each diagram of the registry shown once, by its chapter, as a named figure with caption and alt text."""
    problems, shown = [], collections.defaultdict(list)
    for chapter in sorted(book.glob("*.md")):
        notebook = jupytext.read(chapter)
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            for name in SHOW.findall(cell.source):
                shown[name].append(chapter.stem)
                where = f"{chapter.name}, diagrams.show({name!r})"
                if name not in diagrams.DIAGRAMS:
                    problems.append(f"{where}: no such diagram")
                    continue
                diagram = diagrams.DIAGRAMS[name]
                mystnb = cell.metadata.get("mystnb", {})
                figure, image = mystnb.get("figure", {}), mystnb.get("image", {})
                if chapter.stem != diagram.chapter:
                    problems.append(f"{where}: the registry puts it in {diagram.chapter}")
                if figure.get("name") != diagram.figure:
                    problems.append(f"{where}: figure name {figure.get('name')!r}, expected {diagram.figure!r}")
                if len(str(figure.get("caption", "")).strip()) < 20:
                    problems.append(f"{where}: no caption (mystnb: figure: caption:)")
                alt = str(image.get("alt", "")).strip()
                if len(alt) < 40 or not alt.endswith("."):
                    problems.append(f"{where}: no alt text of a sentence or more (mystnb: image: alt:)")
                if "remove-input" not in cell.metadata.get("tags", []):
                    problems.append(f"{where}: the cell should be tagged remove-input")
    for name in diagrams.DIAGRAMS:
        if len(shown[name]) != 1:
            problems.append(f"diagram {name!r} is shown {len(shown[name])} times ({shown[name]}), expected once")
    return problems


def test_every_diagram_is_in_its_chapter_with_caption_and_alt_text():
    assert chapter_problems(BOOK) == []


def test_figure_names_are_unique():
    figures = [d.figure for d in diagrams.DIAGRAMS.values()]
    assert len(figures) == len(set(figures)) and all(f.startswith("fig-") for f in figures), figures


def test_a_chapter_cell_without_alt_text_or_caption_is_named(tmp_path):
    chapter = diagrams.DIAGRAMS["qkv"].chapter
    text = (BOOK / f"{chapter}.md").read_text(encoding="utf-8")
    broken = re.sub(r"\n  image:\n    alt: [^\n]*", "", text, count=1)
    broken = re.sub(r"\n    caption: [^\n]*", "", broken, count=1)
    assert broken != text
    (tmp_path / f"{chapter}.md").write_text(broken, encoding="utf-8")
    problems = chapter_problems(tmp_path)
    assert any("diagrams.show('qkv'): no alt text" in p for p in problems), problems
    assert any("diagrams.show('qkv'): no caption" in p for p in problems), problems
    assert any("'masks' is shown 0 times" in p for p in problems), problems


# ----------------------------------------------------------------------------------------------
# The Chinese labels (issue 20)

ZH = BOOK / "diagrams" / "labels.zh_CN.yml"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
# What a label may keep from English: code names, identifiers, special tokens (no words to translate)
CODE = re.compile(r"\w*_\w*|\[[A-Z]+\]|\b(?:softmax|LayerNorm|LN|view|transpose|True|False|out)\b")


def has_words(text: str) -> bool:
    """An English label with a word in it (two letters or more once code names are taken out)."""
    return re.search(r"[A-Za-z]{2,}", CODE.sub("", text)) is not None


def untranslated(labels) -> list[str]:
    """Labels whose English text has words but whose translation has no Chinese character."""
    english, other = diagrams.load_labels(), diagrams.load_labels(labels)
    return [f"{d}.{k}: {other[d][k]!r}" for d in english for k, text in english[d].items()
            if has_words(str(text)) and not CJK.search(str(other[d][k]))]


def test_the_chinese_labels_are_complete():
    assert diagrams.translations() == {"zh_CN": ZH}
    assert diagrams.translation_problems(ZH) == []
    assert untranslated(ZH) == []
    worded = [k for labels in diagrams.load_labels().values() for k, t in labels.items() if has_words(str(t))]
    assert len(worded) > 100, len(worded)  # the check looks at the labels that have words


def test_a_label_left_in_english_is_named():
    zh = diagrams.load_labels(ZH)
    left = {**zh, "qkv": {**zh["qkv"], "softmax_op": "softmax over keys"}}
    assert untranslated(left) == ["qkv.softmax_op: 'softmax over keys'"]
    assert not has_words("(B, L, {d_model})") and not has_words("w_q\nd_model → d_k") and has_words("head 0")


@pytest.mark.parametrize("name", NAMES)
def test_chinese_labels_fit_their_boxes_and_are_the_text(name):
    assert diagrams.draw(name, ZH).problems() == [], name
    svg = diagrams.render(name, ZH)
    assert collections.Counter(svg_texts(svg)) == collections.Counter(expected_lines(name, ZH))


def test_chinese_svg_names_a_cjk_font_and_english_none(svgs):
    families = set(re.findall(r"font-family: ([^;]+)", diagrams.render("qkv", ZH)))
    assert len(families) == 1, families
    family = families.pop()
    assert family.startswith("'DejaVu Sans', 'Noto Sans CJK SC'") and family.endswith("sans-serif"), family
    assert "PingFang SC" in family and "Microsoft YaHei" in family, family  # what readers' systems have
    assert "CJK" not in svgs["qkv"]  # the English SVG is as before


def test_a_missing_cjk_font_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(diagrams.SCRIPT_FONTS, "zh", ("No Such Font CJK", []))
    with pytest.raises(RuntimeError, match="fonts-noto-cjk"):
        diagrams.render("masks", ZH)


def test_a_label_file_name_gives_its_language(tmp_path):
    assert diagrams.language_of(None) == "en" and diagrams.language_of(ZH) == "zh_CN"
    assert diagrams.language_of(tmp_path / "other.yml") is None and diagrams.language_of({}) is None
    (tmp_path / "labels.en.yml").write_text("{}", encoding="utf-8")
    (tmp_path / "labels.fr.yml").write_text("{}", encoding="utf-8")
    assert diagrams.translations(tmp_path) == {"fr": tmp_path / "labels.fr.yml"}


def test_a_shown_diagram_carries_every_translation(svgs):
    """The one execution renders each language: English as the output, the rest in its metadata."""
    shown = diagrams.show("masks")
    data, metadata = shown._repr_mimebundle_()
    assert data["image/svg+xml"] == svgs["masks"] == shown._repr_svg_()
    zh = diagrams.translated_outputs(metadata, "zh_CN")["image/svg+xml"]
    assert zh == diagrams.render("masks", ZH) and CJK.search(zh)
    assert diagrams.translated_outputs(metadata, "fr") == {} and diagrams.translated_outputs({}, "zh_CN") == {}
    # a diagram shown with other labels is that one language only
    only = diagrams.show("masks", ZH)
    assert only._repr_mimebundle_() == {"image/svg+xml": zh, "text/plain": repr(only)}
