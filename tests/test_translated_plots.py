"""Translated plots (issue 20): each figure a chapter displays is rendered, at the one English execution,
once more per translation table ``book/figures/text.<language>.yml`` into its output's metadata
(attnlab/course/figures.py). Nothing heavy executes here: the tables are checked against every plotting
call of the chapters, read statically; the swap on small figures, through IPython's own display code.
"""
from __future__ import annotations

import ast
import base64
import io
from pathlib import Path

import jupytext
import matplotlib
import pytest
from IPython.core.formatters import DisplayFormatter
from IPython.core.pylabtools import select_figure_formats
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from attnlab.course import diagrams, figures

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CJK = figures.re.compile(r"[\u4e00-\u9fff]")
ZH = ROOT / "book" / "figures" / "text.zh_CN.yml"

# matplotlib calls whose argument at this index is a text the figure shows
TEXT_ARGUMENT = {"set_title": 0, "set_xlabel": 0, "set_ylabel": 0, "suptitle": 0, "supxlabel": 0,
                 "supylabel": 0, "title": 0, "xlabel": 0, "ylabel": 0, "text": 2, "figtext": 2, "annotate": 0,
                 "set_label": 0, "set_text": 0}
TICK_ARGUMENT = {"set_xticks": 1, "set_yticks": 1, "set_xticklabels": 0, "set_yticklabels": 0, "xticks": 1,
                 "yticks": 1}
TEXT_KEYWORDS = {"label", "title", "xlabel", "ylabel", "text"}  # ax.plot(label=), ax.set(title=), colorbar


def plotting_pages() -> list[Path]:
    """The pages that plot: those whose setup calls use_course_style()."""
    return [p for p in sorted(BOOK.glob("*.md")) if "use_course_style()" in p.read_text(encoding="utf-8")]


def _literals(expression: ast.AST):
    """The string literals and f-strings in an expression (not the pieces of an f-string): (source, sample),
    the sample being the text an f-string shows with each of its values written 1."""
    inner = {id(n) for f in ast.walk(expression) if isinstance(f, ast.JoinedStr) for n in ast.walk(f) if n is not f}
    for node in ast.walk(expression):
        if id(node) in inner:
            continue
        if isinstance(node, ast.JoinedStr):
            yield ast.unparse(node), "".join(v.value if isinstance(v, ast.Constant) else "1" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield repr(node.value), node.value


def plot_texts(page: Path) -> list[tuple[str, str, str]]:
    """(kind, source, sample) of every literal text of the page's plotting calls; kind is "text" or "tick"
    (a tick label written in the code: a word of the author's, unlike the tokens that most tick labels are)."""
    found = []
    for cell in jupytext.read(page).cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Attribute, ast.Name)):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            parts = []
            if name in TEXT_ARGUMENT and len(node.args) > TEXT_ARGUMENT[name]:
                parts.append(("text", node.args[TEXT_ARGUMENT[name]]))
            if name in TICK_ARGUMENT and len(node.args) > TICK_ARGUMENT[name]:
                parts.append(("tick", node.args[TICK_ARGUMENT[name]]))
            parts += [("tick" if k.arg == "labels" else "text", k.value) for k in node.keywords
                      if k.arg in TEXT_KEYWORDS or k.arg == "labels"]
            found += [(kind, src, sample) for kind, expression in parts for src, sample in _literals(expression)]
    return found


def table_gaps(table: figures.Table, pages=None) -> list[str]:
    """Each literal text with words of the pages' plotting calls that the table cannot translate."""
    gaps = []
    for page in pages or plotting_pages():
        for kind, source, sample in plot_texts(page):
            missing = []
            if table.lookup(sample, missing) is None:
                gaps.append(f"{page.stem}: {source} ({', '.join(map(repr, missing))} not in the table)")
    return gaps


@pytest.fixture(scope="module")
def zh():
    return figures.load_table(ZH)


def test_the_pages_that_plot_call_use_course_style():
    """A page that imports pyplot sets it up with use_course_style() (else its plots stay English)."""
    plotting = {p.stem for p in plotting_pages()}
    for page in sorted(BOOK.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert 'plt.style.use("course.mplstyle")' not in text, page.name
        if "import matplotlib.pyplot" in text:
            assert page.stem in plotting, f"{page.name} plots without use_course_style()"
    assert len(plotting) >= 13, sorted(plotting)


def test_the_scan_finds_the_texts_of_a_plotting_cell(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("""---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  name: python3
  display_name: Python 3
---
# A page

```{code-cell} ipython3
%matplotlib inline
ax.plot(x, y, label=f"sigma = {sigma}")
ax.set(xlabel="key position", title=name)
ax.text(0.5, 0.5, "a note", color="grey")
ax.set_xticks(range(3), ["pad" if t else f"{t}" for t in ids])
fig.colorbar(image, ax=ax, label="weight")
```
""", encoding="utf-8")
    assert plot_texts(page) == [("text", "f'sigma = {sigma}'", "sigma = 1"), ("text", "'key position'", "key position"),
                                ("text", "'a note'", "a note"), ("tick", "'pad'", "pad"), ("tick", "f'{t}'", "1"),
                                ("text", "'weight'", "weight")]
    table = figures.Table("zh_CN", {"key position": "键的位置", "pad": "填充", "weight": "权重"},
                          {"sigma = {s}": "sigma = {s}"})
    assert table_gaps(table, [page]) == ["page: 'a note' ('a note' not in the table)"]


def test_the_chinese_table_covers_every_plotting_call_of_the_book(zh):
    assert table_gaps(zh) == []


def test_every_translation_has_chinese_and_keeps_the_math(zh):
    for english, chinese in [*zh.strings.items(), *zh.patterns.items()]:
        assert CJK.search(chinese), f"{english!r}: its translation {chinese!r} has no Chinese characters"
        assert figures.MATH.findall(english) == figures.MATH.findall(chinese), f"{english!r}: math differs"
    assert all(figures.has_words(text) for text in zh.keep)
    assert not set(zh.keep) & set(zh.strings)


def test_words_math_and_numbers():
    assert figures.has_words("sequence length $L$ (tokens)")
    assert figures.has_words("Var($q^\\top k$)")
    for text in ("$d_k$", "0.25", "1e-3", "$q^\\top k / \\sqrt{d_k}$", "(R_m q) · (R_n k)", "", "p = 3", "−1"):
        assert not figures.has_words(text), text


def test_lookup_strings_patterns_and_what_is_missing():
    table = figures.Table("zh_CN", {"no mask": "无掩码", "reference": "参考实现"},
                          {"{name}, causal mask": "{name}，因果掩码", "head {h}: {_what}": "头 {h}：{_what}",
                           "$d_{{k}}$ = {d} features": "$d_{{k}}$ = {d} 个特征"},
                          {"GRU"})
    missing = []
    assert table.lookup("no mask", missing) == "无掩码"
    assert table.lookup("reference, causal mask", missing) == "参考实现，因果掩码"  # the field translated in turn
    assert table.lookup("head 2: abc def", missing) == "头 2：abc def"  # a _field is kept
    assert table.lookup("$d_{k}$ = 64 features", missing) == "$d_{k}$ = 64 个特征"
    assert table.lookup("GRU", missing) == "GRU" and table.lookup("$d_k$ = 3", missing) == "$d_k$ = 3"
    assert missing == []
    assert table.lookup("buggy, causal mask", missing) is None and missing == ["buggy"]
    assert table.lookup("an unknown title", missing) is None and missing == ["buggy", "an unknown title"]


def test_a_pattern_whose_translation_loses_a_field_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fields of its translation"):
        figures.Table("zh_CN", patterns={"{n} parameters": "个参数"})
    with pytest.raises(ValueError, match="must be a name"):
        figures.Table("zh_CN", patterns={"{} parameters": "{} 个参数"})
    bad = tmp_path / "text.zh_CN.yml"
    bad.write_text("strings:\n  a title: 标题\ntitles: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="titles"):
        figures.load_table(bad)
    with pytest.raises(ValueError, match="text.<language>.yml"):
        figures.load_table(tmp_path / "zh.yml")


# ----------------------------------------------------------------------------------------------
# The hook, on small figures, through IPython's display formatter with the inline backend's PNG formatter

class Shell:
    """What the hook and IPython's figure formats need of a shell: a display formatter."""

    def __init__(self):
        self.display_formatter = DisplayFormatter()
        select_figure_formats(self, {"png"})  # what matplotlib_inline does in a kernel


TABLE = figures.Table("zh_CN", {"attention weights": "注意力权重", "key position": "键的位置",
                                "query position $i$": "查询的位置 $i$", "measured": "实测", "pad": "填充",
                                "weight": "权重"},
                      {"attention output, $\\sigma$ = {sigma}": "注意力输出，$\\sigma$ = {sigma}"})


def figure(with_unknown: bool = False) -> Figure:
    """A small figure with a title, axis labels, a legend, a colourbar, word tick labels and math."""
    with matplotlib.style.context(str(figures.STYLE)):
        fig = Figure(figsize=(4, 3), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        image = ax.imshow([[0, 1, 0.5], [1, 0, 0.2], [0.3, 0.3, 0.3]])
        ax.plot([0, 2], [0, 2], label="measured")
        ax.plot([0, 2], [2, 0], label="attention output, $\\sigma$ = 0.4")
        ax.set_title("attention weights")
        ax.set_xlabel("key position")
        ax.set_ylabel("query position $i$")
        ax.set_xticks(range(3), ["7", "9", "pad"])
        ax.legend()
        fig.colorbar(image, ax=ax, label="weight")
        if with_unknown:
            ax.text(0.5, 0.5, "an untranslated note")
            ax.text(0.2, 0.2, "a hidden note", visible=False)  # not shown: not required
    return fig


def shown(fig: Figure, shell: Shell):
    """What IPython's display(fig) publishes: (data, metadata)."""
    return shell.display_formatter.format(fig)


def text_of(fig: Figure) -> list[str]:
    return sorted(t.get_text() for t in figures._texts(fig) if t.get_text())


def test_the_english_png_is_unchanged_and_the_chinese_one_is_in_the_metadata(monkeypatch):
    monkeypatch.setattr(figures, "tables", lambda folder=figures.TABLES: {"zh_CN": TABLE})
    plain, hooked = Shell(), Shell()
    figures.install(hooked)
    before_data, before_metadata = shown(figure(), plain)
    fig = figure()
    texts = text_of(fig)
    data, metadata = shown(fig, hooked)
    assert data == before_data and before_metadata == {}  # byte for byte the English PNG
    chinese = metadata["attnlab"]["translations"]["zh_CN"]["image/png"]
    assert "untranslated" not in metadata["attnlab"]
    assert chinese != data["image/png"] and Image.open(io.BytesIO(base64.b64decode(chinese))).format == "PNG"
    assert text_of(fig) == texts  # the figure itself is untouched (its translation was drawn from a copy)


def test_the_swap_puts_the_translations_and_the_script_font_in_place():
    fig = figure()
    fig.canvas.draw()
    with figures.swapped(fig, TABLE, "Noto Sans CJK SC") as swap:
        fig.canvas.draw()
        shown_now = text_of(fig)
        title = fig.axes[0].title
        assert title.get_text() == "注意力权重" and title.get_fontfamily() == ["DejaVu Sans", "Noto Sans CJK SC"]
        assert fig.axes[0].yaxis.label.get_fontfamily() == ["Noto Sans CJK SC"]  # math: one font for the words
        ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert {"注意力权重", "键的位置", "查询的位置 $i$", "实测", "注意力输出，$\\sigma$ = 0.4", "权重"} <= set(shown_now)
    assert ticks == ["7", "9", "填充"] and swap.missing == []
    fig.canvas.draw()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["7", "9", "pad"]
    assert fig.axes[0].title.get_fontfamily() == ["DejaVu Sans"]


def test_texts_without_words_are_not_looked_up():
    class Recording(dict):
        def __contains__(self, key):
            asked.append(key)
            return super().__contains__(key)

    asked = []
    table = figures.Table("zh_CN", Recording(TABLE.strings), dict(TABLE.patterns))
    fig = figure()
    fig.axes[0].set_ylabel("$d_k$")
    fig.canvas.draw()
    with figures.swapped(fig, table) as swap:
        pass
    assert "attention weights" in asked and "pad" in asked
    assert all(figures.has_words(text) for text in asked), asked  # no "$d_k$", no tick numbers
    assert swap.missing == []


def test_a_missing_text_is_named_in_the_metadata_and_the_execution_goes_on(monkeypatch):
    monkeypatch.setattr(figures, "tables", lambda folder=figures.TABLES: {"zh_CN": TABLE})
    shell = Shell()
    figures.install(shell)
    data, metadata = shown(figure(with_unknown=True), shell)
    assert "image/png" in data and "image/png" in metadata["attnlab"]["translations"]["zh_CN"]
    assert metadata["attnlab"]["untranslated"] == {"zh_CN": ["an untranslated note"]}


def test_the_chinese_table_translates_a_chapter_like_figure(zh):
    """The book's own table on the texts of a figure like chapter 2's (and its f-string's value)."""
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for sigma in (0.1, 0.4):
        ax.plot([0, 1], [0, 1], label=f"attention output, $\\sigma$ = {sigma}")
    ax.set(xlabel="position x (query or key)", ylabel="value y", title="Kernel regression is attention")
    ax.legend()
    assert figures.texts(fig) and all(zh.lookup(t) for t in figures.texts(fig))
    with figures.swapped(fig, zh, "Noto Sans CJK SC") as swap:
        assert ax.get_title() == "核回归就是注意力" and swap.missing == []
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["注意力输出，$\\sigma$ = 0.1",
                                                                       "注意力输出，$\\sigma$ = 0.4"]


def test_the_metadata_key_is_the_one_the_book_reads():
    import sys
    sys.path.insert(0, str(BOOK / "_ext"))
    import translated_messages

    assert figures.METADATA_KEY == diagrams.METADATA_KEY == translated_messages.METADATA_KEY


def test_a_missing_script_font_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(diagrams.font_manager.fontManager, "ttflist", [])  # the one font list (matplotlib's)
    with pytest.raises(RuntimeError, match="fonts-noto-cjk"):
        figures.script_font("zh_CN")
    assert figures.script_font("en") is None


# ----------------------------------------------------------------------------------------------
# The executed book: every plot output carries each language's PNG, and no text was missing

def plot_problems(page: str, nb, languages) -> list[str]:
    """What an executed page's plot outputs (PNG) lack: a language's PNG, or texts its table lacked."""
    problems = []
    for number, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if "image/png" not in output.get("data", {}):
                continue
            metadata = output.get("metadata", {}).get(figures.METADATA_KEY, {})
            for language in languages:
                if "image/png" not in metadata.get("translations", {}).get(language, {}):
                    problems.append(f"{page}, cell {number}: a plot without its {language} PNG (executed before "
                                    f"use_course_style(), or by an old version of it)")
            for language, texts in sorted(metadata.get("untranslated", {}).items()):
                problems.append(f"{page}, cell {number}: not in text.{language}.yml: {texts}")
    return problems


def cached_pages(cache: Path) -> dict[str, object]:
    """The newest executed notebook of each page in a jupyter-cache folder: {page: notebook}."""
    from jupyter_cache import get_cache

    store = get_cache(str(cache))
    newest = {}
    for record in sorted(store.list_cache_records(), key=lambda r: r.created):
        newest[Path(record.uri).stem] = record.pk
    return {page: store.get_cache_bundle(pk).nb for page, pk in newest.items()}


def test_plot_problems_names_a_plot_without_its_png_and_each_missing_text():
    import nbformat

    png = {"image/png": "iVBOR", "text/plain": "<Figure>"}
    cell = nbformat.v4.new_code_cell("plt.show()", outputs=[
        nbformat.v4.new_output("display_data", data=png, metadata={"attnlab": {
            "translations": {"zh_CN": {"image/png": "iVBOR"}}, "untranslated": {"zh_CN": ["a new title"]}}}),
        nbformat.v4.new_output("display_data", data=png),
        nbformat.v4.new_output("stream", name="stdout", text="no plot\n")])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Page"), cell])
    assert plot_problems("ch02_attention", nb, ["zh_CN"]) == [
        "ch02_attention, cell 1: not in text.zh_CN.yml: ['a new title']",
        "ch02_attention, cell 1: a plot without its zh_CN PNG (executed before use_course_style(), or by an "
        "old version of it)"]


@pytest.mark.slow
def test_every_plot_of_the_executed_book_is_in_every_language(built_book):
    """After `make book` (the built_book fixture executes what changed): the execution cache's plots."""
    from conftest import CACHE

    pages = cached_pages(CACHE)
    plotting = [page.stem for page in plotting_pages()]
    assert set(plotting) <= set(pages), sorted(set(plotting) - set(pages))
    problems = [p for page in plotting for p in plot_problems(page, pages[page], sorted(figures.tables()))]
    assert problems == []


def test_without_the_script_font_a_chapter_runs_and_shows_its_english_figures(monkeypatch):
    """A learner who runs a chapter on Colab (no CJK font): no error and no translation, English output."""
    from attnlab.course import diagrams, figures

    monkeypatch.setattr(diagrams.font_manager.fontManager, "ttflist", [
        f for f in diagrams.font_manager.fontManager.ttflist if "CJK" not in f.name])
    assert not diagrams.script_font_installed("zh_CN") and diagrams.script_font_installed("en")
    shown = diagrams.show("masks")
    assert shown.translations == {} and "<svg" in shown.data

    class Shell:  # what install() touches of IPython's shell
        class display_formatter:
            class mimebundle_formatter:
                registered = []

                @classmethod
                def for_type(cls, kind, function):
                    cls.registered.append(kind)
    figures.install(Shell)
    assert Shell.display_formatter.mimebundle_formatter.registered == [], "the hook needs the font it draws with"
