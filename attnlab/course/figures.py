"""The book's plots in every language from one execution: the course style and the translated figures.

Every chapter that plots calls :func:`use_course_style` once, in its setup cell, instead of
``plt.style.use("course.mplstyle")``: the same style (``book/course.mplstyle``), and, in IPython, a
display hook for matplotlib figures. When a figure is displayed (``plt.show()``, or the end of a
cell), the English PNG is the output exactly as before (the inline backend renders it; the hook does
not touch the figure), and for each translation table ``book/figures/text.<language>.yml`` the hook
copies the figure (pickle), swaps the words of the copy's texts (titles, axis and colourbar labels,
legend entries, ``ax.text``/``annotate``, suptitles, and tick labels set from a list), renders the copy
with the same PNG formatter and puts that PNG in the output's metadata,
``metadata["attnlab"]["translations"][<language>]["image/png"]`` (the place the diagrams use, see
``attnlab/course/diagrams.py``). ``book/_ext/translated_messages.py`` shows it in that language's
edition; the English edition ignores it.

The table. ``strings`` maps an English text to its translation, whole; ``patterns`` maps a template
with ``{name}`` fields (Python's format syntax: a literal brace is doubled, as in ``$d_{{k}}$``) to a
template with the same fields, for texts computed by f-strings (``f"attention output, $\\sigma$ =
{sigma}"``): a field matches any text, and a field's value that has words is translated in turn (a
legend entry that names a model), except a field whose name starts with ``_``, kept as it is (a CPU's
name, a string of symbols); ``keep`` lists texts that stay as they are (names such as ``GRU``). A
text without words (numbers, symbols, math between ``$``: :func:`has_words`) is never looked up. Tick
labels are looked up but never required: most are data (the tokens of a sentence, a date's pieces).

A text with words that the table lacks does not stop the execution: it stays English in that figure and
is listed in the output's metadata, ``metadata["attnlab"]["untranslated"][<language>]``, for the tests
(``tests/test_translated_plots.py``), which also read every plotting call of the chapters.

The translated texts are drawn in the script's font, :data:`attnlab.course.diagrams.SCRIPT_FONTS`
(Noto Sans CJK SC for Chinese), after DejaVu Sans, glyph by glyph; a text with math is drawn with the
script's font first, since mathtext draws the words around the math in one font. The font must be
installed where the book is executed (``fonts-noto-cjk``).

Our own because neither matplotlib nor IPython translates a figure's texts; matplotlib_inline's own
PNG formatter renders the translated figure, so both PNGs come from the same code and settings.
"""
from __future__ import annotations

import base64
import functools
import io
import pickle
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.style
import yaml
from matplotlib import cbook
from matplotlib.axis import Tick
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FixedFormatter, FuncFormatter

from attnlab.course.diagrams import METADATA_KEY, ROOT, script_font_installed
from attnlab.course.diagrams import script_font as diagrams_script_font

STYLE = ROOT / "book" / "course.mplstyle"
TABLES = ROOT / "book" / "figures"  # text.<language>.yml
LATIN_FONT = "DejaVu Sans"  # course.mplstyle's font.family

MATH = re.compile(r"(?<!\\)\$.*?(?<!\\)\$", re.S)
WORD = re.compile(r"[A-Za-z]{2,}")


def has_words(text: str) -> bool:
    """Whether ``text`` has a word to translate: two Latin letters in a row outside ``$...$`` math."""
    return bool(WORD.search(MATH.sub("", text)))


def fields(template: str) -> list[str]:
    """The ``{names}`` of a template, in order (an empty name, ``{}``, is an error: fields are named)."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    if any(not name.isidentifier() for name in names):
        raise ValueError(f"template {template!r}: every field must be a name, e.g. {{sigma}}")
    return names


def _regex(template: str) -> re.Pattern:
    parts = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            if spec or conversion:
                raise ValueError(f"template {template!r}: a field is a bare name, without :format or !conversion")
            parts.append(f"(?P<{name}>.+?)")
    return re.compile("".join(parts), re.S)


@dataclass
class Table:
    """One language's table (see the module's docstring): ``lookup(text)`` is its translation or None."""

    language: str
    strings: dict[str, str] = field(default_factory=dict)
    patterns: dict[str, str] = field(default_factory=dict)
    keep: set[str] = field(default_factory=set)

    def __post_init__(self):
        self._compiled = []
        for english, translation in self.patterns.items():
            names, theirs = fields(english), fields(translation)
            if sorted(names) != sorted(theirs) or len(set(names)) != len(names):
                raise ValueError(f"{self.language}: pattern {english!r}: the fields of its translation "
                                 f"{sorted(theirs)} are not its own {sorted(names)} (each once)")
            self._compiled.append((_regex(english), translation))

    def lookup(self, text: str, missing: list[str] | None = None) -> str | None:
        """``text`` translated; itself when it has no words or is kept; None when the table lacks it (then
        appended to ``missing``: the text, or a pattern field's value that the table lacks)."""
        if not has_words(text) or text in self.keep:
            return text
        if text in self.strings:
            return self.strings[text]
        for regex, translation in self._compiled:
            match = regex.fullmatch(text)
            if match:
                values, lacking = {}, []
                for name, value in match.groupdict().items():
                    values[name] = value if name.startswith("_") else self.lookup(value, lacking)
                if not lacking:
                    return translation.format_map(values)
                if missing is not None:
                    missing.extend(lacking)
                return None
        if missing is not None:
            missing.append(text)
        return None


def load_table(path: str | Path) -> Table:
    """``text.<language>.yml`` as a :class:`Table` (a clear error for a malformed file)."""
    path = Path(path)
    parts = path.name.split(".")
    if len(parts) != 3 or parts[0] != "text" or parts[2] != "yml":
        raise ValueError(f"{path}: a figure text table is named text.<language>.yml")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(data) - {"strings", "patterns", "keep"}
    if not isinstance(data, dict) or unknown:
        raise ValueError(f"{path}: expected the sections strings, patterns and keep; not {sorted(unknown)}")
    strings, patterns, keep = data.get("strings") or {}, data.get("patterns") or {}, data.get("keep") or []
    for section, mapping in (("strings", strings), ("patterns", patterns)):
        if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in mapping.items()):
            raise ValueError(f"{path}: {section} must map English text to its translation, text to text")
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise ValueError(f"{path}: keep must be a list of texts")
    return Table(parts[1], dict(strings), dict(patterns), set(keep))


def tables(folder: Path = TABLES) -> dict[str, Table]:
    """Every translation table of the plots: {language: Table}."""
    return {table.language: table for table in map(load_table, sorted(folder.glob("text.*.yml")))}


def script_font(language: str) -> str | None:
    """The font that draws ``language``'s script (None: the Latin font does); an error if matplotlib lacks it."""
    return diagrams_script_font(language, "plots")


# ----------------------------------------------------------------------------------------------
# Swapping a figure's texts

def _tick_labels(fig: Figure):
    """The tick labels given as a list (``set_xticks(ticks, labels)``), per axis: (axis, labels, put), where
    ``put(new)`` makes the axis show ``new`` instead. matplotlib keeps them in a FixedFormatter, or since
    3.8 in a FuncFormatter of ``Axis._format_with_dict`` with a {location: label} dict."""
    for ax in fig.axes:
        for axis in ax._axis_map.values():
            for formatter in (axis.get_major_formatter(), axis.get_minor_formatter()):
                if isinstance(formatter, FixedFormatter):
                    yield axis, list(formatter.seq), lambda new, f=formatter: setattr(f, "seq", list(new))
                elif (isinstance(formatter, FuncFormatter) and isinstance(formatter.func, functools.partial)
                      and getattr(formatter.func.func, "__name__", "") == "_format_with_dict"
                      and formatter.func.args and isinstance(formatter.func.args[0], dict)):
                    labels = formatter.func.args[0]
                    keys = list(labels)
                    yield axis, [labels[k] for k in keys], lambda new, d=labels, k=keys: d.update(zip(k, new))


def _texts(artist, seen=None):
    """The Text artists under ``artist``, each once, tick labels left out (their formatter sets them at
    each draw)."""
    seen = set() if seen is None else seen
    for child in artist.get_children():
        if isinstance(child, Tick) or id(child) in seen:
            continue
        seen.add(id(child))
        if isinstance(child, Text):
            yield child
        yield from _texts(child, seen)


def texts(fig: Figure) -> list[str]:
    """The texts with words that the figure shows and a table must have (tick labels left out)."""
    return [t.get_text() for t in _texts(fig) if t.get_visible() and has_words(t.get_text())]


class swapped:
    """Context manager: ``fig``'s texts translated by ``table`` (drawn in ``font``) inside, restored after.
    ``.missing`` lists the texts (not tick labels) that the table lacks, each once."""

    def __init__(self, fig: Figure, table: Table, font: str | None = None):
        self.fig, self.table, self.font = fig, table, font
        self.missing: list[str] = []
        self._undo = []

    def _font(self, artist: Text):
        if self.font is None:
            return
        before = artist.get_fontproperties().copy()
        family = [self.font] if cbook.is_math_text(artist.get_text()) else [LATIN_FONT, self.font]
        artist.set_fontfamily(family)
        self._undo.append(lambda: artist.set_fontproperties(before))

    def __enter__(self):
        try:
            for artist in list(_texts(self.fig)):
                original = artist.get_text()
                translation = self.table.lookup(original, self.missing if artist.get_visible() else None)
                if translation is None or translation == original:
                    continue
                artist.set_text(translation)
                self._undo.append(lambda a=artist, o=original: a.set_text(o))
                self._font(artist)
            for axis, original, put in list(_tick_labels(self.fig)):
                translated = [self.table.lookup(str(label)) or label for label in original]
                if translated == original:
                    continue
                put(translated)
                self._undo.append(lambda p=put, o=original: p(o))
                # the ticks that will show these labels, made now so that they get the font
                for tick in axis.get_major_ticks(len(original)) + axis.get_minor_ticks():
                    for label in (tick.label1, tick.label2):
                        self._font(label)
        except BaseException:
            self.__exit__()
            raise
        self.missing = list(dict.fromkeys(self.missing))
        return self

    def __exit__(self, *exc):
        while self._undo:
            self._undo.pop()()
        self.fig.stale = True
        return False


# ----------------------------------------------------------------------------------------------
# The display hook

class _Copier(pickle.Pickler):
    """Pickles a figure without pyplot's note that it is an open figure (its copy stays out of pyplot,
    which would show it as one more figure of the cell)."""

    def reducer_override(self, obj):
        if type(obj) is Figure:
            state = obj.__getstate__()
            state.pop("_restore_to_pcf", None)
            return Figure.__new__, (Figure,), state
        return NotImplemented


def copy(fig: Figure) -> Figure:
    """A copy of ``fig`` (through pickle, as matplotlib supports), drawn never: the translations are
    rendered from it, so the figure itself is drawn once, by the PNG formatter, exactly as without the hook
    (drawing a figure twice can move its constrained layout by a pixel)."""
    buffer = io.BytesIO()
    _Copier(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(fig)
    return pickle.loads(buffer.getvalue())


def translated_pngs(fig: Figure, render, languages: dict[str, Table] | None = None) -> dict:
    """The output metadata for ``fig``: each table's PNG as a notebook holds it (base64), rendered by
    ``render(fig)`` (IPython's PNG formatter: base64 text, or bytes), and the texts each table lacked."""
    languages = tables() if languages is None else languages
    translations, untranslated = {}, {}
    for language, table in sorted(languages.items()):
        try:
            twin = copy(fig)
        except Exception as error:  # noqa: BLE001 - the English output must not suffer; the tests see it
            untranslated[language] = [f"(the figure could not be copied: {type(error).__name__}: {error})"]
            continue
        with swapped(twin, table, script_font(language)) as swap:
            png = render(twin)
        if isinstance(png, tuple):  # the retina formatter returns (data, sizes)
            png = png[0]
        if isinstance(png, bytes):
            png = base64.b64encode(png).decode("ascii")
        translations[language] = {"image/png": png}
        if swap.missing:
            untranslated[language] = swap.missing
    metadata = {"translations": translations}
    if untranslated:
        metadata["untranslated"] = untranslated
    return {METADATA_KEY: metadata} if translations else {}


def install(shell) -> None:
    """Register the hook with an IPython shell: a mimebundle formatter for figures that returns no data of
    its own (the PNG formatter, which runs after it, renders the English PNG as always) and the
    translations as the output's metadata."""
    # a language whose script's font is missing here (a learner's Colab) gets no translated figures: they
    # are for the book's build, which installs the font; its tests fail on a plot without them
    languages = {language: table for language, table in tables().items() if script_font_installed(language)}
    if not languages:
        return

    def figure_bundle(fig: Figure):
        try:
            render = shell.display_formatter.formatters["image/png"].lookup(fig)
        except KeyError:  # figures are not shown as PNG here: nothing to translate
            return {}, {}
        return {}, translated_pngs(fig, render, languages)

    shell.display_formatter.mimebundle_formatter.for_type(Figure, figure_bundle)


def use_course_style(translate: bool = True) -> None:
    """The book's plotting setup, one call in each chapter's setup cell: ``course.mplstyle``, and in
    IPython (a chapter's kernel) the hook that puts each figure's translations into its output's metadata."""
    matplotlib.style.use(str(STYLE))
    if not translate:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        install(shell)
