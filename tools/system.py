"""System programs the project needs (Chromium, shellcheck): found on PATH, or installed from Debian's
packages when we are root, as the project's own setup promises; otherwise the reason, for a skip."""
from __future__ import annotations

import os
import shutil
import subprocess


def find_or_install(binaries: tuple[str, ...], package: str) -> tuple[str | None, str]:
    """(path, "") of the first of ``binaries`` on PATH, installing Debian's ``package`` as root if
    none is; else (None, the reason and what to run)."""
    for name in binaries:
        if shutil.which(name):
            return shutil.which(name), ""
    install = f"apt-get install -y --no-install-recommends {package}"
    if os.name != "posix" or os.geteuid() != 0:
        return None, (f"{binaries[0]} is not installed and this user is not root, so it cannot be installed "
                      f"here; install it (`sudo {install}`)")
    if not shutil.which("apt-get"):
        return None, f"{binaries[0]} is not installed and there is no apt-get to install Debian's {package} package"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = []
    for command in ("apt-get update -qq", install):
        result = subprocess.run(command.split(), capture_output=True, text=True, env=env)
        log.append(f"$ {command} -> {result.returncode}\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
        if result.returncode != 0:
            return None, f"installing {package} failed:\n" + "\n".join(log)
    path = next((shutil.which(name) for name in binaries if shutil.which(name)), None)
    return (path, "") if path else (None, f"apt-get installed {package} but no {binaries[0]} is on PATH:\n" + "\n".join(log))
