"""The Chinese catalogues are complete and speak the glossary's language (issue 20).

Every catalogue under ``locales/zh_CN/LC_MESSAGES`` (the book's pages, the exercise notebooks, the
learner-facing messages of the self-checks and the grader) is read as data: no build is needed.

* A message with words has a translation (formulas, code, names and numbers stay as they are and need none).
* Appendix B's glossary is the one term base of both editions: where an English message uses a glossary
  term, its translation uses that term's Chinese (one of the variants the table gives), and no translation
  uses a term of the table's column of wrong terms seen in the wild.
"""
from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "locales" / "zh_CN" / "LC_MESSAGES"
GLOSSARY = ROOT / "book" / "appB_glossary.md"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

# What a translator leaves as it is: code spans and roles, inline math, link targets, LaTeX commands,
# identifiers (snake_case, dotted, CamelCase), file names and options.
NOT_WORDS = re.compile(r"``.*?``|`[^`]*`|\$[^$]*\$|\]\([^)]*\)|\{[a-z:-]+\}|\\[A-Za-z]+|<[^>]*>|https?://\S+"
                       r"|\b\w*[_.]\w+\b|\b[a-z]+[A-Z]\w*\b|\b[A-Z][a-z]+[A-Z]\w*\b|(?<![\w-])--?[a-z][\w-]*")
WORD = re.compile(r"\b[A-Za-z]{3,}\b")


def prose(message: str) -> str:
    """A message without what a translator leaves as it is."""
    return " ".join(NOT_WORDS.sub(" ", message).split())


def words(message: str) -> list[str]:
    """The English words of a message that a translator translates."""
    return WORD.findall(prose(message))


def is_display_math(message: str) -> bool:
    """A ``$$`` / ``{math}`` block's body: LaTeX, not prose (it reaches the catalogue as a message of its own)."""
    return bool(re.search(r"\\[A-Za-z]+|[_^]\{", message)) and "$" not in message and not re.search(
        r"(?:\b[a-z]{3,}\b\s+){4}", re.sub(r"\\text\{[^}]*\}", "", message))


def needs_translation(message: str) -> bool:
    """Words to translate, in a message that is not a formula and not already Chinese (appendix B's
    Chinese column: '暂退法（丢弃法，Dropout）')."""
    found = words(message)
    is_a_name = bool(re.fullmatch(r"[A-Z][\w.+-]*(?: [A-Z][\w.+-]*){0,2}", message.strip()))  # "Dask", "Gradescope"
    return bool(found) and not is_a_name and not is_display_math(message) and len(CJK.findall(message)) < len(found)


def catalogues() -> list[Path]:
    return sorted(LOCALE.rglob("*.po"))


def read(path: Path):
    with path.open("rb") as handle:
        return read_po(handle)


# --------------------------------------------------------------------------- the glossary of appendix B
@dataclass
class Term:
    english: str  # one English variant, e.g. "padding mask"
    chinese: tuple[str, ...]  # its accepted Chinese variants, e.g. ("填充掩码", "填充掩蔽")
    checked: bool  # whether the checks below look for it (see `checked`)


def _chinese_variants(cell: str) -> list[str]:
    """'层归一化（层规范化）' -> ['层归一化', '层规范化']; '暂退法（丢弃法，Dropout）' -> three."""
    out = []
    for piece in re.split(r"[（(]", cell):
        out += [p.strip() for p in re.split(r"[，,、]", piece.strip(" ）)")) if p.strip()]
    return out


def _english_variants(cell: str) -> list[tuple[str, bool]]:
    """'causal mask (look-ahead mask)' -> [('causal mask', True), ('look-ahead mask', False)];
    'sliding-window (local) attention' -> [('sliding-window attention', True)]. A name given in
    parentheses is checked only when it is an abbreviation (RNN, LSTM): 'GPT-style' is prose."""
    main = re.sub(r"\s*\([^)]*\)", "", cell).strip()  # the cell's parentheses are removed by the caller
    out = [(main, True)]
    tail = re.search(r"\(([^)]*)\)\s*$", cell)
    if tail:
        out.append((tail.group(1).strip(), tail.group(1).strip().isupper()))
    return out


def glossary_rows() -> list[list[str]]:
    """The table's rows as the book reads them (book/_ext/editions.py: the Chinese search's dictionary)."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        from editions import glossary_rows as rows
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    return rows(GLOSSARY)


@functools.cache  # read once: every message of every catalogue is checked against it
def glossary() -> tuple[list[Term], list[str]]:
    """The glossary table of appendix B: its terms (English variant -> Chinese variants) and its wrong terms."""
    terms, wrong = [], []
    for row in glossary_rows():
        english, chinese, _meaning, _chapter, mistakes = row[:5]
        wrong += [w.strip() for w in re.split(r"[，,、]", mistakes) if w.strip()]
        # "post-norm / pre-norm" pairs with "后置归一化（Post-LN）／前置归一化（Pre-LN）", "query, key, value" with "查询、键、值"
        en_parts = re.split(r"\s*/\s*|,\s*", re.sub(r"\s*\([^)]*/[^)]*\)", "", english))  # "(MQA / GQA)" goes
        zh_parts = re.split(r"／|、|，", re.sub(r"（[^）]*／[^）]*）", "", chinese))
        paired = len(en_parts) == len(zh_parts) > 1
        for i, en in enumerate(en_parts):
            zh = tuple(_chinese_variants(zh_parts[i] if paired else chinese))
            for variant, main in _english_variants(en):
                terms.append(Term(variant.lower(), zh, main and checked(variant)))
    return terms, wrong


def glossary_english_cells() -> list[str]:
    return [row[0] for row in glossary_rows()]


# A term is checked where it can only mean itself: phrases of two words or more, hyphenated words and
# abbreviations. Single common words ("key", "value", "mask", "token", "prompt") also have everyday senses.
def checked(english: str) -> bool:
    return " " in english or "-" in english or english.isupper() or english.lower() in {
        "encoder", "decoder", "dropout", "logits"}


# Chinese forms built on a term: 暂退概率 (dropout probability) from 暂退法, 长短期记忆单元 from 长短期记忆网络.
SUFFIXES = ("法", "网络", "机制", "模型", "注意力")


def accepted(variant: str) -> tuple[str, ...]:
    for suffix in SUFFIXES:
        if variant.endswith(suffix) and len(variant) - len(suffix) >= 2:
            return variant, variant[: -len(suffix)]
    return (variant,)


# A translator who finds a term used in another sense ("softmax attention weights key j by ...": a verb)
# says so in the entry: a translator comment "glossary-exempt: attention weights".
EXEMPT = re.compile(r"glossary-exempt:\s*([^(;]+)")


def term_problems(english: str, chinese: str, exempt: tuple[str, ...] = ()) -> list[str]:
    terms, wrong = glossary()
    problems = []
    text = prose(english).replace("*", "").lower()
    chinese_text = chinese.replace("*", "").lower()
    for term in terms:
        if not term.checked or term.english in exempt or not re.search(rf"\b{re.escape(term.english)}s?\b", text):
            continue
        forms = [form.lower() for zh in term.chinese for form in accepted(zh)] + [term.english]
        if not any(form in chinese_text for form in forms):
            problems.append(f"uses {term.english!r} but its translation has none of {'/'.join(term.chinese)}")
    # a wrong term may be quoted where the English quotes it (appendix A discusses 回归神经网络)
    problems += [f"uses the wrong term {w!r} (appendix B, last column)" for w in wrong
                 if w in chinese and w not in english]
    return problems


def test_the_glossary_table_is_read():
    terms, wrong = glossary()
    english = {t.english for t in terms}
    assert {"multi-head attention", "layer normalization", "beam search", "label smoothing", "key"} <= english
    assert dict((t.english, t.chinese) for t in terms)["key"] == ("键",)
    assert {"causal mask", "look-ahead mask", "sliding-window attention", "rnn"} <= english
    assert "层规范化" in dict((t.english, t.chinese) for t in terms)["layer normalization"]
    assert {"回归神经网络", "关键字向量"} <= set(wrong)


def test_a_term_check_can_fail():
    """The rule itself, on a made-up message: the wrong Chinese for a glossary term is caught."""
    problems = term_problems("Multi-head attention splits the model.", "多个头的关注把模型分开。")
    assert problems and "多头注意力" in problems[0]
    assert not term_problems("Multi-head attention splits the model.", "多头注意力把模型分开。")
    assert term_problems("A recurrent neural network (RNN).", "回归神经网络。")
    assert not term_problems("Softmax attention weights key j.", "……", exempt=("attention weights",))


# --------------------------------------------------------------------------- the committed catalogues
def test_there_are_catalogues_for_the_book_the_exercises_and_the_messages():
    found = {p.relative_to(LOCALE).parts[0] for p in catalogues()}
    assert "book" in found, "no catalogue of the book's pages: run `python tools/i18n.py update`"


@pytest.mark.parametrize("path", catalogues(), ids=lambda p: str(p.relative_to(LOCALE)))
def test_every_message_with_words_is_translated(path):
    """No message of the English with words is left to fall back to English (run
    `python tools/i18n.py update` after changing a page, then translate what it adds)."""
    english_terms = {cell.lower() for cell in glossary_english_cells()}  # the glossary's English column stays English
    missing = [m.id for m in read(path) if m.id and not isinstance(m.id, tuple) and needs_translation(m.id)
               and not m.string and m.id.lower() not in english_terms]
    assert not missing, (f"{path.relative_to(ROOT)}: {len(missing)} message(s) without a translation, e.g. "
                         + "; ".join(repr(m[:80]) for m in missing[:5]))


@pytest.mark.parametrize("path", catalogues(), ids=lambda p: str(p.relative_to(LOCALE)))
def test_translations_use_the_glossary_terms(path):
    problems = []
    for message in read(path):
        if message.id and message.string and not isinstance(message.id, tuple):
            exempt = tuple(m.group(1).strip().lower() for c in message.user_comments if (m := EXEMPT.search(c)))
            problems += [f"{message.id[:60]!r} {p}" for p in term_problems(message.id, message.string, exempt)]
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems[:15])


def test_a_glued_word_is_shown_in_the_language_of_the_edition():
    """book/_ext/translated_messages.py: a translation's glue key is its page's, and the page's
    `<key>__<language>` (words computed in that language) is taken where the page glued one."""
    import sys
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from translated_messages import qualified

    message = "相差 {glue:text}`spread`，{glue:text}`verdict`，{glue:text}`loss:.3f`。"
    keys = {"spread": 1, "verdict": "so", "verdict__zh_CN": "因此", "loss": 0.5}
    assert qualified(message, "ch11.md", "zh_CN", keys) == (
        "相差 {glue:text}`ch11.md::spread:s`，{glue:text}`ch11.md::verdict__zh_CN:s`，{glue:text}`ch11.md::loss:.3f`。")
    assert "verdict__zh_CN" not in qualified(message, "ch11.md", "fr", keys)
