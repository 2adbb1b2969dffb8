"""Translated exercise notebooks: the prose of ``solutions/<a>/<a>.ipynb`` as gettext messages.

    python tools/i18n.py exercises --lang zh_CN   # locales/zh_CN/LC_MESSAGES/exercises/<a>.po

Every markdown cell of a source notebook is cut into messages at the granularity of the book's
catalogues (Sphinx's gettext builder): a heading, a paragraph, a list item, a table cell, an HTML
block (a ``<details><summary>`` line) or any other block; a code fence and a ``$$`` math block are kept
as they are and are not messages, nor is a block without words (math or code alone). A heading, a
paragraph and a list item made of one paragraph are one line in their message (the line breaks of
the English source are soft), so rewrapping the English keeps its translations.

:func:`translate_notebook` puts the translations back, message by message: a message without a
translation keeps its English text, byte for byte, so a notebook with an empty catalogue is the
English one. Markdown is cut by markdown-it-py (what MyST itself parses with) and the catalogues are
read and written by babel; what is ours is only the mapping from blocks to messages and back.

The catalogues follow sphinx-intl's update semantics, except that nothing is ever marked fuzzy: a
message whose English is unchanged keeps its translation, a new one is empty, a stale one is dropped.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

LOCALES = "locales"
DOMAIN = "exercises"  # locales/<lang>/LC_MESSAGES/exercises/<assignment>.po


@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    return MarkdownIt("commonmark").enable("table").use(dollarmath_plugin)


_VERBATIM = {"fence", "code_block", "math_block", "math_block_label", "hr"}
_LIST_MARKER = re.compile(r"^(\s*(?:[-+*]|\d+[.)])(?:[ \t]+|$))")
_NO_WORDS = [re.compile(p, re.S) for p in (r"`[^`]*`", r"\$\$.*?\$\$", r"\$[^$]*\$", r"<[^>]*>")]


def has_words(text: str) -> bool:
    """True when ``text`` has a word outside code spans, math and HTML tags."""
    for pattern in _NO_WORDS:
        text = pattern.sub(" ", text)
    return re.search(r"[^\W\d_]{2,}", text) is not None


@dataclass
class Segment:
    """Lines ``start:end`` of a markdown cell that are one message ``msgid``; ``prefix`` is what a
    translation is put after (a heading's ``## ``, a list item's marker), ``indent`` what its
    continuation lines get (a list item's), ``joined``: the message is the block's lines made one."""

    start: int
    end: int
    msgid: str
    prefix: str = ""
    indent: str = ""
    columns: tuple[int, int] | None = None  # a table cell: characters start:end of its one line


def segments(source: str) -> list[Segment]:
    """The messages of one markdown cell, in order (blocks without words left out)."""
    lines = source.split("\n")
    tokens = _parser().parse(source)
    found: list[Segment] = []

    def span(start: int, end: int) -> tuple[int, int]:
        while end > start and not lines[end - 1].strip():
            end -= 1
        return start, end

    def add(segment: Segment) -> None:
        if segment.end > segment.start and segment.msgid.strip() and has_words(segment.msgid):
            found.append(segment)

    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.level != 0 or token.map is None or token.type.endswith("_close"):
            i += 1
            continue
        start, end = span(*token.map)
        if token.type in _VERBATIM:
            pass
        elif token.type == "heading_open" and token.markup.startswith("#"):
            text = tokens[i + 1].content
            line = lines[start]
            prefix = line[: len(line) - len(line.lstrip())] + token.markup + " "
            add(Segment(start, end, text.strip(), prefix=prefix))
        elif token.type == "paragraph_open":
            add(Segment(start, end, " ".join(line.strip() for line in lines[start:end])))
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            j, depth = i + 1, 1
            while depth:
                child = tokens[j]
                if child.type == token.type:
                    depth += 1
                elif child.type == token.type.replace("_open", "_close"):
                    depth -= 1
                elif child.type == "list_item_open" and child.level == 1:
                    add(_list_item(lines, tokens, j, span(*child.map)))
                j += 1
        elif token.type == "table_open":
            for row in range(start, end):
                for column in _table_cells(lines[row]):
                    add(Segment(row, row + 1, lines[row][column[0]:column[1]].strip(), columns=column))
        else:  # a quote, an HTML block...: the block as it is
            add(Segment(start, end, "\n".join(lines[start:end])))
        # skip to the end of this block
        if token.nesting == 1:
            depth, i = 1, i + 1
            while depth:
                depth += tokens[i].nesting if tokens[i].level == 0 else 0
                i += 1
        else:
            i += 1
    return found


_CELL_EDGE = re.compile(r"(?<!\\)\|")


def _table_cells(line: str) -> list[tuple[int, int]]:
    """(start, end) of each cell of a table row (GFM: cells split at unescaped pipes); none for the
    delimiter row."""
    if re.fullmatch(r"[\s|:-]*", line):
        return []
    edges = [m.start() for m in _CELL_EDGE.finditer(line)]
    stripped = line.strip()
    if not stripped.startswith("|"):
        edges.insert(0, -1)
    if not stripped.endswith("|") or stripped.endswith("\\|"):
        edges.append(len(line))
    return [(a + 1, b) for a, b in zip(edges, edges[1:])]


def _list_item(lines: list[str], tokens, index: int, where: tuple[int, int]) -> Segment:
    start, end = where
    marker = _LIST_MARKER.match(lines[start])
    prefix = marker.group(1) if marker else ""
    if prefix and not prefix[-1].isspace():
        prefix += " "
    indent = " " * len(prefix)
    body = [lines[start][len(prefix):]] + [line[len(indent):] if line.startswith(indent) else line.lstrip()
                                            for line in lines[start + 1:end]]
    # children of the item: one paragraph -> one line; else (nested list, code...) the item as it is
    j, depth, kinds = index + 1, 1, []
    while depth:
        child = tokens[j]
        depth += child.nesting if child.type == "list_item_open" or child.type == "list_item_close" else 0
        if child.level == tokens[index].level + 1 and child.nesting >= 0 and child.type != "inline":
            kinds.append(child.type)
        j += 1
    if kinds == ["paragraph_open"]:
        return Segment(start, end, " ".join(line.strip() for line in body), prefix=prefix, indent=indent)
    return Segment(start, end, "\n".join(body), prefix=prefix, indent=indent)


def cell_messages(nb) -> list[tuple[int, Segment]]:
    """(cell index, segment) for every message of the notebook's markdown cells."""
    return [(index, segment) for index, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
            for segment in segments(cell.source)]


def translate_markdown(source: str, translations: dict[str, str]) -> str:
    """``source`` with each message that has a translation replaced by it; the rest byte for byte."""
    lines = source.split("\n")
    for segment in reversed(segments(source)):
        text = translations.get(segment.msgid)
        if not text:
            continue
        if segment.columns:  # a table cell: one line, no pipe of its own
            a, b = segment.columns
            line = lines[segment.start]
            cell = " " + " ".join(text.split()).replace("|", "\\|") + " "
            lines[segment.start] = line[:a] + cell + line[b:]
            continue
        if segment.prefix.lstrip().startswith("#"):  # a heading is one line
            text = " ".join(text.split())
        new = text.split("\n")
        new = [segment.prefix + new[0]] + [segment.indent + line if line.strip() else "" for line in new[1:]]
        lines[segment.start:segment.end] = new
    return "\n".join(lines)


def translate_notebook(nb, translations: dict[str, str]) -> None:
    """Translate every markdown cell of ``nb`` in place."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = translate_markdown(cell.source, translations)


_MARKUP = {"code span": re.compile(r"`[^`]+`"), "formula": re.compile(r"\$\$.+?\$\$|\$[^$]+\$", re.S),
           "HTML tag": re.compile(r"</?[A-Za-z][^>]*>"), "link target": re.compile(r"\]\([^)]*\)")}


def markup_problems(msgid: str, msgstr: str) -> list[str]:
    """What a translation lost or added of its English's code spans, formulas, HTML tags and link
    targets (they are code, not prose: the same ones, each as many times; the order may change)."""
    from collections import Counter

    problems = []
    for kind, pattern in _MARKUP.items():
        english, translated = Counter(pattern.findall(msgid)), Counter(pattern.findall(msgstr))
        lost, added = sorted((english - translated).elements()), sorted((translated - english).elements())
        if lost or added:
            problems.append(f"{kind}s differ (missing {lost}, added {added})")
    return problems


# --------------------------------------------------------------------------- catalogues
def catalogue_path(root: str, lang: str, assignment: str) -> str:
    return os.path.join(root, LOCALES, lang, "LC_MESSAGES", DOMAIN, assignment + ".po")


def _md_lines(root: str, assignment: str) -> list[str]:
    md = os.path.join(root, "solutions", assignment, assignment + ".md")
    if not os.path.isfile(md):
        return []
    with open(md, encoding="utf-8") as handle:
        return handle.read().split("\n")


HEADER = """\
# The prose of the exercise notebook solutions/{assignment}/{assignment}.md, one message per heading,
# paragraph, list item or table cell. Translate msgstr; an empty one stays English in exercises_zh/.
# Keep code spans, math ($...$), Markdown markup and HTML tags as they are.
# After the English changes: `python tools/i18n.py exercises --lang {lang}` (keeps translations of unchanged
# messages, drops stale ones), then `python -m attnlab.course.release` (builds exercises_zh/).
#"""


def template(nb, assignment: str, lang: str, root: str):
    """A babel Catalog of the notebook's messages (empty translations), each located in the
    ``.md`` source (``solutions/<a>/<a>.md:LINE``) where there is one, else by cell index."""
    from babel.messages.catalog import Catalog

    catalog = Catalog(locale=lang, project=f"attnlab exercises {assignment}", version="", fuzzy=False,
                      msgid_bugs_address="", copyright_holder="", header_comment=HEADER.format(assignment=assignment, lang=lang))
    md, cursor = _md_lines(root, assignment), 0
    for index, segment in cell_messages(nb):
        cell = nb.cells[index].source.split("\n")
        first = cell[segment.start]
        line = next((n for n in range(cursor, len(md)) if md[n] == first), None)
        if line is not None:
            cursor = line
            location = (f"solutions/{assignment}/{assignment}.md", line + 1)
        else:
            location = (f"solutions/{assignment}/{assignment}.ipynb", index)
        if segment.msgid in catalog:
            catalog[segment.msgid].locations.append(location)
        else:
            message = catalog.add(segment.msgid, "", locations=[location])
            message.flags.clear()  # babel guesses python-format flags from braces and %: this is prose
    return catalog


def read_catalogue(path: str):
    from babel.messages.pofile import read_po

    with open(path, "rb") as handle:
        return read_po(handle)


def translations(root: str, lang: str, assignment: str) -> dict[str, str]:
    """{English: translation} of the assignment's catalogue (empty when it has none); fuzzy entries
    are not used."""
    path = catalogue_path(root, lang, assignment)
    if not os.path.isfile(path):
        return {}
    return {m.id: m.string for m in read_catalogue(path)
            if m.id and isinstance(m.string, str) and m.string and not m.fuzzy}


def update_catalogue(nb, assignment: str, lang: str, root: str) -> tuple[str, int, int]:
    """Write ``locales/<lang>/LC_MESSAGES/exercises/<a>.po`` from the notebook: translations of
    unchanged messages kept, new ones empty, stale ones dropped, nothing fuzzy. Returns (path,
    messages, translated)."""
    from babel.messages.pofile import write_po

    path = catalogue_path(root, lang, assignment)
    catalog = template(nb, assignment, lang, root)
    if os.path.isfile(path):
        old = read_catalogue(path)
        catalog.creation_date, catalog.revision_date = old.creation_date, old.revision_date
        for message in catalog:
            if message.id and message.id in old and old[message.id].string:
                message.string = old[message.id].string
                message.user_comments = list(old[message.id].user_comments)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        write_po(handle, catalog, width=0)
    messages = [m for m in catalog if m.id]
    return path, len(messages), sum(1 for m in messages if m.string)


def update_all(lang: str, root: str, notebooks: dict) -> list[tuple[str, int, int]]:
    """Update the catalogue of each assignment of ``notebooks`` ({assignment: its source notebook};
    the release imports this module, so the caller builds them: tools/i18n.py, with
    release.build_source)."""
    return [update_catalogue(nb, name, lang, root) for name, nb in notebooks.items()]
