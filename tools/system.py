"""System programs the project needs (Chromium, shellcheck) and the Chinese edition's font: found on
the system, or installed from Debian's packages when we are root, as the project's own setup promises;
otherwise the reason, for a skip."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def _apt_install(package: str, missing: str) -> str:
    """Install Debian's ``package`` (or several, space-separated) with apt-get as root: "" when done,
    else why not (``missing`` says what was looked for)."""
    install = f"apt-get install -y --no-install-recommends {package}"
    if os.name != "posix" or os.geteuid() != 0:
        return (f"{missing} is not installed and this user is not root, so it cannot be installed "
                f"here; install it (`sudo {install}`)")
    if not shutil.which("apt-get"):
        return f"{missing} is not installed and there is no apt-get to install Debian's {package} package"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = []
    for command in ("apt-get update -qq", install):
        result = subprocess.run(command.split(), capture_output=True, text=True, env=env)
        log.append(f"$ {command} -> {result.returncode}\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
        if result.returncode != 0:
            return f"installing {package} failed:\n" + "\n".join(log)
    return ""


def find_or_install(binaries: tuple[str, ...], package: str) -> tuple[str | None, str]:
    """(path, "") of the first of ``binaries`` on PATH, installing Debian's ``package`` as root if
    none is; else (None, the reason and what to run)."""
    for name in binaries:
        if shutil.which(name):
            return shutil.which(name), ""
    reason = _apt_install(package, binaries[0])
    if reason:
        return None, reason
    path = next((shutil.which(name) for name in binaries if shutil.which(name)), None)
    return (path, "") if path else (None, f"apt-get installed {package} but no {binaries[0]} is on PATH")


# The Chinese edition's font: Noto Sans CJK (Debian's fonts-noto-cjk), which fontconfig gives Chromium
# for zh-CN text and matplotlib finds by its family name (book/course.mplstyle's fallback after DejaVu Sans).
CJK_PACKAGE = "fonts-noto-cjk"
CJK_FAMILY = "Noto Sans CJK SC"  # the family of Simplified Chinese in fonts-noto-cjk
CJK_LANG = "zh-cn"  # fontconfig's language tag of Simplified Chinese (bare "zh" has no orthography of its own)


def cjk_fonts(lang: str = CJK_LANG) -> list[str]:
    """The font files that fontconfig knows for ``lang`` (``fc-list :lang=...``); [] without fontconfig."""
    if not shutil.which("fc-list"):
        return []
    result = subprocess.run(["fc-list", f":lang={lang}", "file"], capture_output=True, text=True)
    return sorted({line.strip().rstrip(":") for line in result.stdout.splitlines() if line.strip()})


def find_or_install_cjk_font(package: str = CJK_PACKAGE, lang: str = CJK_LANG) -> tuple[list[str], str]:
    """(font files, "") of the fonts fontconfig has for Chinese, installing Debian's ``package`` as root if
    it has none; else ([], the reason and what to run)."""
    fonts = cjk_fonts(lang)
    if fonts:
        matplotlib_sees_new_fonts()
        return fonts, ""
    if not shutil.which("fc-list"):
        reason = _apt_install(f"fontconfig {package}", f"fontconfig with a {lang} font")
    else:
        reason = _apt_install(package, f"a font for {lang} (fc-list :lang={lang} lists none)")
    if reason:
        return [], reason
    if shutil.which("fc-cache"):
        subprocess.run(["fc-cache"], capture_output=True)
    fonts = cjk_fonts(lang)
    if fonts:
        matplotlib_sees_new_fonts()
    return (fonts, "") if fonts else ([], f"apt-get installed {package} but fc-list :lang={lang} lists no font")


def matplotlib_sees_new_fonts(family: str = CJK_FAMILY) -> None:
    """Make matplotlib see ``family`` when fontconfig has it: matplotlib keeps its own list of the system's
    fonts (``fontlist-*.json`` in its cache folder) and never rereads the system for new ones, so a list
    written before the font was installed is deleted (matplotlib writes a new one at its next start; the
    documented remedy). No matplotlib: nothing to do."""
    try:
        import matplotlib
        from matplotlib import font_manager
    except ImportError:
        return
    if any(font.name == family for font in font_manager.fontManager.ttflist):
        return
    for cache in Path(matplotlib.get_cachedir()).glob("fontlist-v*.json"):
        cache.unlink(missing_ok=True)


def cjk_font_family(lang: str = CJK_LANG) -> str:
    """The family that fontconfig picks for text in ``lang`` (``fc-match :lang=...``, what Chromium shows),
    if that font has the language's characters; "" when it has not (tofu) or without fontconfig."""
    if not shutil.which("fc-match"):
        return ""
    result = subprocess.run(["fc-match", "--format=%{family[0]}\t%{lang}", f":lang={lang}"],
                            capture_output=True, text=True)
    family, _, langs = result.stdout.strip().partition("\t")
    return family if lang in langs.split("|") else ""


def main(argv: list[str] | None = None) -> int:
    """``python tools/system.py fonts``: the CJK font that the book's Chinese diagrams and plots are drawn
    with (installed as root; `make book` and `make test` run this first). Exit 1, saying what to install, without one."""
    import argparse

    parser = argparse.ArgumentParser(prog="python tools/system.py", description=main.__doc__.splitlines()[0])
    parser.add_argument("what", choices=("fonts",))
    parser.parse_args(argv)
    fonts, reason = find_or_install_cjk_font()
    if not fonts:
        print(f"tools/system.py: no font for Chinese: {reason}. The Chinese diagrams of the book are measured "
              f"with {CJK_FAMILY}: install Debian's/Ubuntu's `{CJK_PACKAGE}` (macOS: `brew install --cask "
              "font-noto-sans-cjk-sc`) and run the command again.", file=sys.stderr)
        return 1
    print(f"tools/system.py: a font for Chinese: {cjk_font_family() or fonts[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
