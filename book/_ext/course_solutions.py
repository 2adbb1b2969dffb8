"""Skeletons before an exercise, solutions after it, and one switch that withholds every solution.

The reading path never hands an answer over before the learner has tried: a chapter shows a graded
function or class as a skeleton, and its full code appears only in the solutions appendix.

1. ``{skeleton} attnlab.attention.scaled_dot_product_attention`` shows the signature and docstring
   of a library object with every body replaced by ``...`` (for a class, every method's signature
   and docstring), built by :func:`attnlab.course.release.skeleton_source`: the same skeleton the
   exercise notebook asks the learner to fill.
2. ``{solutions} ps02_attention`` shows "one way to write it": the full source of every graded
   answer of the assignment, from :func:`attnlab.course.release.graded_solutions` (the objects of
   the ``#| solution-from:`` lines of ``solutions/<a>/<a>.md`` and its hand-written solution cells),
   after a sentence that points back to the exercise's chapter. The list is read from the
   assignment's source, so it never drifts; an assignment with graded answers but no
   ``{solutions}`` directive on the page that has the others is a build warning (so an error in
   the strict build).
3. ``course_solutions`` (``sphinx: config:`` in ``_config.yml``, default true) is the one switch for
   a class that is still working. When false, the ``{solutions}`` directives print a short note
   instead of code, and, because a later exercise notebook gives earlier assignments' solutions as
   code, every download link of an exercise or solution notebook is replaced by the notebook's name
   and a note that the instructor hands the exercises out: no notebook is copied to ``_downloads/``
   and the header's exercise menu (``notebook_links.py``) becomes that note. A bug of the catalogue
   (``attnlab/course/bugs.py``, shown by appendix A with ``literalinclude``) is mostly correct code
   around one wrong line, so its listing keeps only its ``def``/``class`` lines, its docstring and the
   lines marked ``# BUG``; each run of other lines becomes ``...``.
"""
from __future__ import annotations

import importlib
import inspect
import os
import string

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from attnlab.course import release
from attnlab.course.messages import N_, translated_template

logger = logging.getLogger(__name__)

CONFIG = "course_solutions"
WITHHELD = "course-exercise-withheld"  # class of the node that replaces a withheld download link
WITHHELD_NOTE = "course-exercise-note"  # id prefix of the note that says who hands the exercise out
NOTE_NO_SOLUTIONS = N_("The solutions are not published in this edition of the book: your class is still working "
                     "on the exercises. Your instructor decides when they are handed out.")
NOTE_EXERCISES = N_("In this edition of the book the exercise notebooks are not offered for download: "
                  "your instructor hands them out.")


def words(config, template: str) -> str:
    """``template`` (a ``N_()`` sentence, in messages.po) in the language of the edition being built."""
    return translated_template(template, getattr(config, "language", None) or "en")


def sentence(config, template: str, **parts: nodes.Node) -> list[nodes.Node]:
    """The sentence ``template`` in the edition's language, each ``{field}`` replaced by the node given for it."""
    out: list[nodes.Node] = []
    for literal, field, _spec, _conversion in string.Formatter().parse(words(config, template)):
        if literal:
            out.append(nodes.Text(literal))
        if field:
            out.append(parts[field])
    return out


def solutions_published(config) -> bool:
    value = getattr(config, CONFIG, True)
    if isinstance(value, str):  # a YAML string such as "false"
        return value.strip().lower() not in ("false", "no", "off", "0", "")
    return bool(value)


def _resolve(dotted: str):
    module_name, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _code_block(text: str) -> nodes.literal_block:
    block = nodes.literal_block(text, text, language="python")
    block["classes"].append("course-code")
    return block


class SkeletonDirective(SphinxDirective):
    """The signature and docstring of a graded library object, bodies replaced by ``...``."""

    required_arguments = 1
    has_content = False

    def run(self):
        dotted = self.arguments[0]
        try:
            obj = _resolve(dotted)
            text = release.skeleton_source(obj)
        except (ImportError, AttributeError, ValueError, TypeError, OSError, SyntaxError) as err:
            raise self.error(f"skeleton: cannot show {dotted!r}: {err}") from None
        self.env.note_dependency(inspect.getsourcefile(obj))  # re-read the page when the library changes
        block = _code_block(text)
        block["classes"].append("course-skeleton")
        self.set_source_info(block)
        return [block]


class SolutionsDirective(SphinxDirective):
    """Every graded answer of one assignment, or a note when solutions are withheld.

    Without an argument: one section per assignment, titled by its notebook's title, in the order of
    the book (``release.course_outline``), so a new assignment needs no edit of the appendix."""

    required_arguments = 0
    optional_arguments = 1
    has_content = False
    option_spec = {"class": directives.class_option}

    def run(self):
        if not self.arguments:
            out = []
            for row in release.course_outline(release.ROOT):
                if not row["assignment"]:
                    continue
                title = row["exercise"] or row["assignment"]
                section = nodes.section(ids=[nodes.make_id(row["assignment"])], names=[nodes.fully_normalize_name(title)])
                section += nodes.title(text=title)
                section += self._one(row["assignment"])
                out.append(section)
            self.env.note_dependency(os.path.join(release.ROOT, "_toc.yml"))
            return out
        return self._one(self.arguments[0])

    def _one(self, assignment: str) -> list:
        if assignment not in release.assignments(release.ROOT):
            raise self.error(f"solutions: no assignment {assignment!r}; known: {', '.join(release.assignments())}")
        self.env.course_solutions_pages = getattr(self.env, "course_solutions_pages", {})
        self.env.course_solutions_pages.setdefault(self.env.docname, set()).add(assignment)
        for suffix in (".md", ".ipynb"):  # rebuild when the assignment changes
            self.env.note_dependency(f"{release.ROOT}/{release.SOLUTIONS}/{assignment}/{assignment}{suffix}")
        if not solutions_published(self.config):
            note = nodes.note()
            note += nodes.paragraph(text=words(self.config, NOTE_NO_SOLUTIONS))
            return [note]

        solutions = release.graded_solutions(assignment)
        out: list[nodes.Node] = [self._pointer(assignment)]
        for solution in solutions:
            label = nodes.paragraph()
            if solution.from_library:
                label += sentence(self.config, N_("{name}, the course's reference:"),
                                  name=nodes.literal(text=solution.name))
                self.env.note_dependency(inspect.getsourcefile(_resolve(solution.name)))
            else:
                label += sentence(self.config, N_("The answer cell {name} of the notebook:"),
                                  name=nodes.literal(text=solution.name))
            code = solution.source
            if not solution.from_library:  # the nbgrader markers are for the release, not for a reader
                code = "\n".join(line for line in code.splitlines()
                                 if line.strip() not in (release.BEGIN, release.END))
            out += [label, _code_block(code)]
        return out

    def _pointer(self, assignment: str) -> nodes.paragraph:
        """'One way to write the graded code of <exercise> (chapter ...). Try the exercise first.'"""
        para = nodes.paragraph()
        notebook = nodes.literal(text=f"{assignment}.ipynb")
        chapter = release.chapter_of(assignment)
        if chapter:
            docname = chapter.removesuffix(".md")
            ref = addnodes.pending_xref("", nodes.inline("", "", classes=["xref", "std", "std-doc"]),
                                        refdomain="std", reftype="doc", reftarget="/" + docname,
                                        refexplicit=False, refwarn=True, refdoc=self.env.docname)
            para += sentence(self.config, N_("One way to write the graded answers of {notebook}, the exercise of "
                                             "{chapter}. Try the exercise first: the grader checks what your code "
                                             "does, and any code that behaves the same earns the same points."),
                             notebook=notebook, chapter=ref)
        else:
            para += sentence(self.config, N_("One way to write the graded answers of {notebook}. Try the exercise "
                                             "first: the grader checks what your code does, and any code that "
                                             "behaves the same earns the same points."), notebook=notebook)
        return para


class WithholdExerciseDownloads(SphinxTransform):
    """Without published solutions, a download link of an exercise or solution notebook becomes its name."""

    default_priority = 800  # after the parser, before the download collector (doctree-read)

    def apply(self, **kwargs) -> None:
        if solutions_published(self.config):
            return
        withheld = []
        for ref in list(self.document.findall(addnodes.download_reference)):
            target = ref.get("reftarget", "")
            if not target.endswith(".ipynb") or not any(part in target for part in ("exercises/", "solutions/")):
                continue
            name = target.rsplit("/", 1)[-1]
            literal = nodes.literal(text=name, classes=[WITHHELD])
            ref.replace_self(literal)
            withheld.append(literal)
        # one note before each paragraph that lost a link (after it would split a sentence from its list)
        done = set()
        for literal in withheld:
            block = literal.parent
            while block is not None and not isinstance(block, nodes.Body):
                block = block.parent
            if block is None or id(block) in done or block.parent is None:
                continue
            done.add(id(block))
            note = nodes.note(ids=[f"{WITHHELD_NOTE}-{len(done)}"], classes=[WITHHELD_NOTE])
            note += nodes.paragraph(text=words(self.config, NOTE_EXERCISES))
            block.parent.insert(block.parent.index(block), note)


BUGS = "attnlab/course/bugs.py"
NOTE_BUGS = N_("In this edition of the book the listings of the bug catalogue show only the wrong lines "
             "(marked # BUG): the lines around them are correct code of the exercises.")


def bug_lines_only(code: str) -> str:
    """Keep def/class/decorator lines, docstrings and ``# BUG`` lines; each run of other lines becomes ``...``."""
    out: list[str] = []
    for line in code.splitlines():
        stripped = line.strip()
        if "# BUG" in line or stripped.startswith(("def ", "class ", "@", '"""')) or not stripped:
            out.append(line)
        elif not out or out[-1].strip() != "...":
            out.append(line[: len(line) - len(line.lstrip())] + "...")
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


class ShowOnlyTheBugs(SphinxTransform):
    """Without published solutions, a listing from the bug catalogue shows only its wrong lines."""

    default_priority = 801

    def apply(self, **kwargs) -> None:
        if solutions_published(self.config):
            return
        first = True
        for block in list(self.document.findall(nodes.literal_block)):
            if not str(block.get("source", "")).replace("\\", "/").endswith(BUGS):
                continue
            text = bug_lines_only(block.astext())
            block.children = [nodes.Text(text)]
            block.rawsource = text
            if first and block.parent is not None:
                note = nodes.note(classes=["course-bugs-note"])
                note += nodes.paragraph(text=words(self.config, NOTE_BUGS))
                block.parent.insert(block.parent.index(block), note)
                first = False


def check_every_assignment_shown(app: Sphinx, env) -> None:
    """The page with {solutions} directives must have one for every assignment with graded answers."""
    pages = getattr(env, "course_solutions_pages", {})
    if not pages:
        return
    shown = set().union(*pages.values())
    missing = [a for a in release.assignments() if a not in shown and release.graded_solutions(a)]
    if missing:
        page = sorted(pages)[0]
        logger.warning(f"{page}: no ```{{solutions}} NAME``` section for {', '.join(missing)}; "
                       "add one per assignment", location=page)


def purge(app: Sphinx, env, docname: str) -> None:
    getattr(env, "course_solutions_pages", {}).pop(docname, None)


def merge(app: Sphinx, env, docnames, other) -> None:
    pages = getattr(env, "course_solutions_pages", {})
    pages.update({d: s for d, s in getattr(other, "course_solutions_pages", {}).items() if d in docnames})
    env.course_solutions_pages = pages


def tag_the_edition(app: Sphinx, config) -> None:
    """Tag ``course_solutions`` in the edition with solutions, so a page can keep prose that gives an
    answer away (appendix A's "Fix" paragraphs) inside ``{only} course_solutions``."""
    if solutions_published(config):
        app.tags.add(CONFIG)


def setup(app: Sphinx) -> dict:
    # "env": flipping the switch re-reads every page (links, notes and code change with it)
    app.add_config_value(CONFIG, True, "env", [bool, str])
    app.add_directive("skeleton", SkeletonDirective)
    app.add_directive("solutions", SolutionsDirective)
    app.add_transform(WithholdExerciseDownloads)
    app.add_transform(ShowOnlyTheBugs)
    app.connect("env-check-consistency", check_every_assignment_shown)
    app.connect("config-inited", tag_the_edition)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
