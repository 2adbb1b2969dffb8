"""Translated messages of MyST-NB pages: glued numbers and heading anchors survive translation.

Sphinx parses each translated message as a small document of its own
(``sphinx.transforms.i18n.publish_msgstr``), which breaks two things of ours.

Glued numbers. By then myst-nb has let go of the page's notebook
renderer, from which a glue role reads its value, so a bare ``{glue:text}`key``` in a translation
finds nothing: the strict build fails ("No key ... found in glue data") and the number is lost.
The glue data of every page is still in Sphinx's environment, where myst-nb's own cross-page form
``page.md::key`` looks it up; this extension writes each bare key of a translated message in that
form, with the message's own page, before Sphinx parses it. Translators keep the English message's
roles as they are. A glued value made of words (``"more than" if noisy else "less than"``) is glued a
second time in each language as ``<key>__<language>`` (``spread_versus_range__zh_CN``), and the
translation then shows that one.

Heading anchors. MyST records a page's heading slugs (for links such as ``ch02_attention.md#masks``) in
Sphinx's environment when it finishes parsing a document, and the small document of a translated
heading overwrites the page's whole map with its one translated slug: every anchored link into the page
breaks. The page's map is put back after each message; the sections keep their English ids, so links
into a translated page still work.

Computed outputs. What a code cell displays (a table it computes, a printed result) is output, like
the code itself: the same in every edition, and never a message for translators (its numbers may
differ between two executions). Every text node inside a cell's output is marked untranslatable, except
a figure's caption, which the chapter writes in the cell's metadata: it is prose, and a message.

Translated figures. An output may carry its own translations, rendered at the one (English) execution:
``metadata["attnlab"]["translations"][<language>][<mime type>]`` (the book's diagrams do, see
``attnlab/course/diagrams.py``). A build in that language (Sphinx's ``language``, e.g. ``zh_CN``) writes
and shows that image instead of the English one; its figure, caption and alt text stay where they
are (the caption and alt text are messages of the page). myst-nb 1.4 has no hook for this but entry
points of an installed package, so its image renderer is wrapped, as ``publish_msgstr`` is above.

Our own because neither Sphinx 7, MyST-Parser 3 nor myst-nb 1.4 handles these; an English build
translates nothing and is unchanged.
"""
from __future__ import annotations

import dataclasses
import os
import re

from docutils import nodes
from myst_nb.core.render import NbElementRenderer
from myst_nb.ext.glue.crossref import read_glue_cache
from sphinx.transforms import i18n
from sphinx.transforms import SphinxTransform

# {glue}`key`, {glue:text}`key:format`, ...: the role, the key, then an optional :format (not a page's ::)
GLUE = re.compile(r"(\{glue(?::[a-z]+)?\}`)([^`:]+)((?::(?!:)[^`]*)?`)")


def qualified(source: str, page: str, language: str | None = None, keys=()) -> str:
    """``source`` with every bare glue key written as ``page::key`` (and ``{glue:text}`` given its default
    format ``s`` explicitly: it splits its content at the last colon). Where the page also glued
    ``<key>__<language>`` (words computed in that language: ``"大于" if noisy else "小于"``), that one is used."""
    def rewrite(m: re.Match) -> str:
        role, key, rest = m.groups()
        if role == "{glue:text}`" and rest == "`":
            rest = ":s`"
        if language and f"{key}__{language}" in keys:
            key = f"{key}__{language}"
        return f"{role}{page}::{key}{rest}"

    return GLUE.sub(rewrite, source)


class OutputsAreNotMessages(SphinxTransform):
    """Mark the text of every code cell's output untranslatable, before Sphinx translates or extracts."""

    default_priority = 19  # before sphinx.transforms.i18n.Locale (20), which translates

    def apply(self, **kwargs) -> None:
        for output in self.document.findall(nodes.container):
            if "cell_output" in output.get("classes", ()):
                for text in output.findall(nodes.TextElement):
                    if isinstance(text, nodes.caption):
                        # a figure's caption is the chapter's prose (the cell's metadata), not output:
                        # a message, with the page as its source (myst-nb gives it none)
                        text.source = text.source or self.document["source"]
                        text.line = text.line or output.line or 0
                        continue
                    if not any(isinstance(parent, nodes.caption) for parent in _ancestors(text)):
                        text["translatable"] = False


def _ancestors(node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


METADATA_KEY = "attnlab"  # the same key as attnlab.course.diagrams.METADATA_KEY (not imported: it imports torch)


def translated(data, language: str | None):
    """myst-nb's ``data`` (an output's MimeData) with the content that its output's metadata holds for
    ``language`` and its mime type; unchanged when there is none (or no language)."""
    metadata = (data.output_metadata or {}).get(METADATA_KEY) or {}
    content = ((metadata.get("translations") or {}).get(language) or {}).get(data.mime_type) if language else None
    if content is None:
        return data
    if not isinstance(content, type(data.content)):
        raise TypeError(f"the {language} translation of a {data.mime_type} output is a {type(content).__name__}, "
                        f"the output itself a {type(data.content).__name__}")
    return dataclasses.replace(data, content=content)


def _translate_images() -> None:
    render_image = NbElementRenderer.render_image
    if getattr(render_image, "_translates", False):
        return

    def render_translated_image(self, data):
        env = self.renderer.sphinx_env
        language = env.config.language if env is not None else None
        return render_image(self, translated(data, language))

    render_translated_image._translates = True
    NbElementRenderer.render_image = render_translated_image


def setup(app):
    app.add_transform(OutputsAreNotMessages)
    _translate_images()
    publish = i18n.publish_msgstr
    if not getattr(publish, "_qualifies_glue", False):
        def publish_msgstr(app, source, source_path, source_line, config, settings):
            page = os.path.basename(str(source_path).split(":", 1)[0])
            metadata = app.env.metadata[app.env.docname]
            slugs = metadata.get("myst_slugs")
            keys = read_glue_cache(app.env.mystnb_config.output_folder, app.env.docname)
            try:
                return publish(app, qualified(source, page, app.config.language, keys), source_path, source_line,
                               config, settings)
            finally:
                if slugs is not None:
                    metadata["myst_slugs"] = slugs

        publish_msgstr._qualifies_glue = True
        i18n.publish_msgstr = publish_msgstr
    return {"parallel_read_safe": True}
