"""Notebook downloads on every chapter, launch buttons only where a repository is configured.

The one place that says where the course lives is ``repository.url`` in ``_config.yml``.

1. Every chapter is a MyST Markdown notebook. sphinx-book-theme offers its ``.ipynb`` download only
   while launch buttons are on; here the executed notebook (``_build/jupyter_execute/<page>.ipynb``)
   is copied next to the page's source in ``_sources/`` and offered by the theme's download button
   on every chapter, with or without a repository.
2. With ``repository.url`` empty, the launch providers of ``launch_buttons`` are switched off, so that
   no page links to Binder, JupyterHub or Colab for a repository that does not exist. With a GitHub
   address, the theme shows its Binder/JupyterHub launch buttons for the chapter notebooks (Colab
   cannot open a Markdown notebook, so it is offered for the exercises only), and the repository
   and issues buttons.
3. A page that links an exercise notebook with the ``{download}`` role (for example
   ``{download}`ps02_attention.ipynb <../exercises/ps02_attention/ps02_attention.ipynb>```) gets an
   "exercise" menu in its header: download the notebook and, where a repository is configured, open
   that exercise notebook itself on Binder, JupyterHub or Colab.
4. With ``course_solutions: false`` (``_config.yml``; see ``course_solutions.py``) the book offers no
   exercise notebook: ``course_solutions.py`` turns each such link into the notebook's name and a
   note, and the header menu becomes that note ("from your instructor"), without a download.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlencode

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx

from attnlab.course.messages import N_, translated_template

PROVIDERS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url")
UI_PREFIX = {"classic": "tree", "jupyterlab": "lab/tree"}


def _theme_options(app: Sphinx) -> dict:
    return app.config.html_theme_options if isinstance(app.config.html_theme_options, dict) else {}


def github_repository(app: Sphinx) -> tuple[str, str] | None:
    """(org, repo) of ``repository.url`` when it is a GitHub address, else None."""
    url = (_theme_options(app).get("repository_url") or "").strip().rstrip("/")
    if not url.startswith("https://github.com/"):
        return None
    parts = url.removeprefix("https://github.com/").split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1].removesuffix(".git")


def launch_off_without_repository(app: Sphinx, config) -> None:
    """No repository, no launch buttons: blank the providers before the theme reads them."""
    options = _theme_options(app)
    launch = options.get("launch_buttons")
    if not isinstance(launch, dict):
        return
    app.course_launch = dict(launch)  # the configured providers, for the exercise links
    if github_repository(app) is None:
        options["launch_buttons"] = {**launch, **{key: "" for key in PROVIDERS}}
    else:  # the repository and issues buttons come with the address
        options["use_repository_button"] = options["use_issues_button"] = True
        # Colab cannot open a chapter's MyST Markdown source: Colab is offered for the exercise
        # notebooks (real .ipynb files) only; Binder and JupyterHub open chapters with jupytext.
        options["launch_buttons"] = {**launch, "colab_url": "", "deepnote_url": ""}


def _is_notebook(app: Sphinx, pagename: str) -> bool:
    return "kernelspec" in app.env.metadata.get(pagename, {})


def offer_notebook_download(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Copy the executed notebook of a text notebook into _sources/ for the theme's .ipynb button."""
    if app.builder.format != "html" or not _is_notebook(app, pagename):
        return
    source = str(context.get("sourcename", ""))
    if source.endswith(".ipynb"):
        context["ipynb_source"] = source
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def launch_urls(app: Sphinx, path_in_repo: str) -> list[tuple[str, str, str]]:
    """(provider, icon, url) opening ``path_in_repo`` for each configured provider."""
    repo = github_repository(app)
    launch = getattr(app, "course_launch", {}) or {}
    if repo is None:
        return []
    org, name = repo
    branch = _theme_options(app).get("repository_branch") or "main"
    ui = UI_PREFIX.get(launch.get("notebook_interface", "classic"), "tree")
    urls = []
    if launch.get("binderhub_url"):
        base = launch["binderhub_url"].strip("/")
        urls.append(("Binder", "_static/images/logo_binder.svg",
                     f"{base}/v2/gh/{org}/{name}/{branch}?urlpath={ui}/{path_in_repo}"))
    if launch.get("jupyterhub_url"):
        base = launch["jupyterhub_url"].strip("/")
        query = urlencode({"repo": f"https://github.com/{org}/{name}", "urlpath": f"{ui}/{name}/{path_in_repo}",
                           "branch": branch}, safe="/")
        urls.append(("JupyterHub", "_static/images/logo_jupyterhub.svg", f"{base}/hub/user-redirect/git-pull?{query}"))
    if launch.get("colab_url"):
        base = launch["colab_url"].strip("/")
        urls.append(("Colab", "_static/images/logo_colab.png", f"{base}/github/{org}/{name}/blob/{branch}/{path_in_repo}"))
    return urls


WITHHELD = "course-exercise-withheld"  # course_solutions.py: a download link replaced by the notebook's name
WITHHELD_NOTE = "course-exercise-note"


def exercise_menu(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """A header menu for each exercise notebook the page links with {download} (or, where the
    edition withholds the notebooks, a note that points at the page's note)."""
    if app.builder.format != "html" or doctree is None or "header_buttons" not in context:
        return
    withheld = [n.astext() for n in doctree.findall(nodes.literal) if WITHHELD in n.get("classes", [])]
    notes = [n["ids"][0] for n in doctree.findall(nodes.note) if WITHHELD_NOTE in n.get("classes", []) and n["ids"]]
    language = app.config.language or "en"

    def say(template: str, **values) -> str:  # the menu's words in the edition's language (messages.po)
        return translated_template(template, language).format(**values)

    if withheld and notes:
        buttons = [{"type": "link", "url": f"#{notes[0]}", "text": say(N_("{name}: from your instructor"), name=name),
                    "tooltip": say(N_("This edition does not offer the exercise for download: your instructor "
                                      "hands it out")),
                    "icon": "fas fa-info-circle", "label": "withheld-exercise-button"}
                   for name in dict.fromkeys(withheld)]
        context["header_buttons"].append({"type": "group", "tooltip": say(N_("Exercise notebook")),
                                          "icon": "fas fa-pencil-alt",
                                          "buttons": buttons, "label": "exercise-buttons"})
    pathto = context["pathto"]
    seen = set()
    for ref in doctree.findall(addnodes.download_reference):
        target, filename = ref.get("reftarget", ""), ref.get("filename")
        if not target.endswith(".ipynb") or not filename or filename in seen:
            continue
        seen.add(filename)
        path_in_repo, _ = app.env.relfn2path(target, pagename)
        name = Path(path_in_repo).name
        buttons = [{"type": "link", "url": pathto(f"_downloads/{filename}", 1), "text": name,
                    "tooltip": say(N_("Download the exercise notebook {name}"), name=name), "icon": "fas fa-download",
                    "label": "download-exercise-button"}]
        for provider, icon, url in launch_urls(app, Path(path_in_repo).as_posix()):
            buttons.append({"type": "link", "url": url, "text": say(N_("{name} on {provider}"), name=name, provider=provider),
                            "tooltip": say(N_("Open the exercise notebook on {provider}"), provider=provider), "icon": icon,
                            "label": "launch-exercise-button"})
        context["header_buttons"].append({"type": "group", "tooltip": say(N_("Exercise notebook")),
                                          "icon": "fas fa-pencil-alt",
                                          "buttons": buttons, "label": "exercise-buttons"})


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", launch_off_without_repository, priority=950)
    app.connect("html-page-context", offer_notebook_download, priority=499)  # before the theme's buttons (501)
    app.connect("html-page-context", exercise_menu, priority=502)  # after them
    return {"parallel_read_safe": True, "parallel_write_safe": True}
