"""Messages a learner reads (self-checks, the grader's checks, the feedback page), written once in
English and translated where they are shown.

    from attnlab.course.messages import _
    raise CheckFailed(_("{name}: expected shape {expected}, got {got}", name=name, expected=shape, got=got.shape))

``_`` returns a :class:`Message`: a ``str`` whose text is the English one (so every existing use of a
message, ``str(exc)``, ``in``, logging, keeps working) that also keeps its *template* and its
*parameters*. The template is a constant string, so ``pybabel extract -k _`` (and
``python tools/i18n.py messages``) finds every message without running anything; an f-string could not
be extracted, which is why none is used for a message a learner reads.

Translation happens where the reader is, never inside the grader's worker:

* the grader's worker (and each grading process) sends ``Message.to_json()`` (template and parameters,
  plain JSON) beside the English text; the trusted side rebuilds it with :meth:`Message.from_json`, which
  accepts only strings, numbers and nested messages, and renders it in the notebook's language
  (``metadata.attnlab.language``) with :func:`received`, the English text where anything is amiss;
* every template is formatted by a restricted ``str.format`` (:func:`format_message`): plain field names
  only (no ``{x.attr}``, ``{x[0]}``, ``{0}``), plain format specs of bounded width, so that neither a
  worker's template nor a translation looked up by it can reach an object's attributes;
* a self-check in a learner's notebook renders in ``LANGUAGE``, which the Chinese release's setup cell
  sets.

The catalogues are JSON files generated from the gettext catalogues (``locales/<lang>/LC_MESSAGES/
messages.po``) into ``attnlab/course/locale/<lang>.json``, so that the course library reads them with the
standard library alone and ships them in its wheel. A template without a translation, or whose
translation does not name the same fields, is shown in English.

Why our own ~100 lines and not ``gettext.translation``: gettext translates a *finished* string, but the
grader must translate a message it did not format (the worker did), from its template and parameters,
and must not trust the parameters; and the library must not depend on compiled ``.mo`` files (which the
repository does not keep).
"""
from __future__ import annotations

import json
import re
import string
from functools import lru_cache
from pathlib import Path

LOCALE = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("en", "zh_CN")
LANGUAGE = "en"  # the language self-checks speak in this process; the Chinese release sets "zh_CN"
MAX_DEPTH = 4  # nested messages (a message as a parameter of another); deeper JSON is refused
MAX_TEXT = 4000  # characters of one parameter received from the worker
MAX_PARAMS = 32  # parameters of one message received from the worker
MAX_WIDTH = 200  # the largest width or precision a format spec may ask for ("{x:>200}")
_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?[bcdeEfFgGnosxX%]?\Z")


def fields(template: str) -> set[str]:
    """The names of ``{fields}`` in a template (format specs such as ``{got:g}`` included)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class _SafeFormatter(string.Formatter):
    """``str.format`` restricted to what a message needs: a field is a plain name (no ``{x.attr}``,
    ``{x[0]}`` or ``{0}``: a template that came from the worker never reaches an object's
    attributes), its format spec a plain one with a width and precision of at most MAX_WIDTH (no
    ``{x:>999999999}``), and no nested fields in a spec. Anything else raises ValueError."""

    def get_field(self, field_name, args, kwargs):
        if not field_name.isidentifier():
            raise ValueError(f"a message's field must be a plain name, not {field_name[:40]!r}")
        return kwargs[field_name], field_name

    def format_field(self, value, format_spec):
        if format_spec:
            spec = _SPEC.match(format_spec)
            if spec is None or any(int(n) > MAX_WIDTH for n in spec.groups() if n):
                raise ValueError(f"format spec {format_spec[:40]!r} is not allowed in a message")
        return format(value, format_spec)

    def parse(self, format_string):
        for literal, name, spec, conversion in super().parse(format_string):
            if spec and ("{" in spec or "}" in spec):
                raise ValueError("a field inside a format spec is not allowed in a message")
            yield literal, name, spec, conversion


_FORMAT = _SafeFormatter()


def format_message(template: str, params: dict) -> str:
    """``template.format(**params)`` through the safe formatter (ValueError, KeyError on a bad one)."""
    return _FORMAT.vformat(template, (), params)


class Message(str):
    """English text that remembers its template and parameters (see the module's docstring)."""

    template: str
    params: dict

    def __new__(cls, template: str, /, **params):
        text = format_message(template, params)  # literal braces are doubled, as in any format string
        self = super().__new__(cls, text)
        self.template = template
        self.params = params
        return self

    def __reduce__(self):  # pickle and copy keep the text, template and parameters (no formatting again)
        return _restore, (str.__str__(self), self.template, self.params)

    def render(self, language: str | None = None) -> str:
        """The text in ``language`` (default :data:`LANGUAGE`); English where no translation exists."""
        language = language or LANGUAGE
        if language == "en":
            return str.__str__(self)
        params = {k: v.render(language) if isinstance(v, Message) else v for k, v in self.params.items()}
        translated = translated_template(self.template, language)
        if translated is not self.template:
            try:
                return format_message(translated, params)
            except (ValueError, KeyError, IndexError, TypeError):
                pass
        try:
            return format_message(self.template, params)
        except (ValueError, KeyError, IndexError, TypeError):  # a nested message's text changed its spec's type
            return str.__str__(self)

    def to_json(self) -> dict:
        def value(v):
            if isinstance(v, Message):
                return v.to_json()
            if isinstance(v, (bool, int, float)) or v is None:
                return v
            return str(v)
        return {"template": self.template, "params": {k: value(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, data, depth: int = 0) -> "Message":
        """The message a worker sent, rebuilt on the trusted side: a template string and parameters
        that are strings (cut to MAX_TEXT), numbers or messages; anything else raises ValueError."""
        if depth > MAX_DEPTH or not isinstance(data, dict) or not isinstance(data.get("template"), str) \
                or not isinstance(data.get("params", {}), dict) or len(data.get("params", {})) > MAX_PARAMS:
            raise ValueError("not a message")
        params = {}
        for key, v in data.get("params", {}).items():
            if not isinstance(key, str) or not key.isidentifier():
                raise ValueError("not a message")
            if isinstance(v, dict):
                v = cls.from_json(v, depth + 1)
            elif isinstance(v, str):
                v = v[:MAX_TEXT]
            elif not (isinstance(v, (bool, int, float)) or v is None):
                raise ValueError("not a message")
            params[key] = v
        template = data["template"][:MAX_TEXT]
        try:
            if fields(template) - set(params):
                raise ValueError("not a message")
            return cls(template, **params)
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            raise ValueError("not a message") from None


def _restore(text: str, template: str, params: dict) -> Message:
    self = str.__new__(Message, text)
    self.template, self.params = template, params
    return self


def _(template: str, /, **params) -> Message:
    """A translatable message: ``_("{name}: expected a number, got {got}", name=name, got=describe(got))``."""
    return Message(template, **params)


def N_(template: str) -> str:
    """A template marked for the catalogue but formatted later, piece by piece (the book's extensions
    build a sentence around nodes: :func:`translated_template` gives its text in a language)."""
    return template


def translated_template(template: str, language: str | None = None) -> str:
    """``template`` in ``language`` (its fields unchanged), or the English template where none exists."""
    language = language or LANGUAGE
    translated = catalogue(language).get(template) if language != "en" else None
    try:
        return translated if translated and fields(translated) == fields(template) else template
    except ValueError:
        return template


def render(text, language: str | None = None) -> str:
    """Any text in ``language``: a Message is translated, any other string is shown as it is."""
    return text.render(language) if isinstance(text, Message) else str(text)


def received(text: str, data, language: str | None = None) -> str:
    """A message received from another process, in ``language``: ``data`` (its ``to_json()``) rebuilt
    and translated, or ``text`` (its English words) as it is when ``data`` is absent or malformed."""
    if data is None:
        return str(text)
    try:
        return Message.from_json(data).render(language)
    except (ValueError, RecursionError):
        return str(text)


def as_json(text) -> dict | None:
    """``text.to_json()`` for a Message, None for any other string (what a result carries beside its text)."""
    return text.to_json() if isinstance(text, Message) else None


@lru_cache(maxsize=None)
def catalogue(language: str) -> dict[str, str]:
    """Template -> translation for ``language`` (empty for English or a language without a catalogue)."""
    path = LOCALE / f"{language}.json"
    if language == "en" or not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def set_language(language: str) -> None:
    """Self-checks in this process speak ``language`` (one of LANGUAGES)."""
    global LANGUAGE
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of the course's languages {LANGUAGES}")
    LANGUAGE = language
