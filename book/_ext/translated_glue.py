"""Glued numbers inside translated messages: myst-nb's ``{glue}`` roles in a translated edition.

Sphinx parses each translated message as a small document of its own
(``sphinx.transforms.i18n.publish_msgstr``). By then myst-nb has let go of the page's notebook
renderer, from which a glue role reads its value, so a bare ``{glue:text}`key``` in a translation
finds nothing: the strict build fails ("No key ... found in glue data") and the number is lost.
The glue data of every page is still in Sphinx's environment, where myst-nb's own cross-page form
``page.md::key`` looks it up; this extension writes each bare key of a translated message in that
form, with the message's own page, before Sphinx parses it. Translators keep the English message's
roles as they are. Our own because neither Sphinx 7 nor myst-nb 1.4 offers it; an English build
translates nothing and is unchanged.
"""
from __future__ import annotations

import os
import re

from sphinx.transforms import i18n

# {glue}`key`, {glue:text}`key:format`, ...: the role, the key, then an optional :format (not a page's ::)
GLUE = re.compile(r"(\{glue(?::[a-z]+)?\}`)([^`:]+)((?::(?!:)[^`]*)?`)")


def qualified(source: str, page: str) -> str:
    """``source`` with every bare glue key written as ``page::key`` (and ``{glue:text}`` given its default
    format ``s`` explicitly: it splits its content at the last colon)."""
    def rewrite(m: re.Match) -> str:
        role, key, rest = m.groups()
        if role == "{glue:text}`" and rest == "`":
            rest = ":s`"
        return f"{role}{page}::{key}{rest}"

    return GLUE.sub(rewrite, source)


def setup(app):
    publish = i18n.publish_msgstr
    if not getattr(publish, "_qualifies_glue", False):
        def publish_msgstr(app, source, source_path, source_line, config, settings):
            page = os.path.basename(str(source_path).split(":", 1)[0])
            return publish(app, qualified(source, page), source_path, source_line, config, settings)

        publish_msgstr._qualifies_glue = True
        i18n.publish_msgstr = publish_msgstr
    return {"parallel_read_safe": True}
