"""Binder: a working JupyterLab for learners, with the CPU build of torch and no instructor panels.

`binder/requirements.txt` pins what `requirements.txt` pins (torch as its ``+cpu`` build from
PyTorch's CPU index, so no CUDA wheel is downloaded); `binder/postBuild` installs the course library
and switches off nbgrader's instructor panels. Its `jupyter` lines are run here against a temporary
Jupyter configuration (user level instead of the image's sys-prefix) and must leave those panels off.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)$")
INSTRUCTOR_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list")
INSTRUCTOR_SERVER = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")


def _pins(path: Path) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for line in path.read_text().splitlines()
            if (m := PIN.match(line.strip()))}


def test_binder_pins_are_the_course_pins_with_cpu_torch():
    course, binder = _pins(ROOT / "requirements.txt"), _pins(BINDER / "requirements.txt")
    assert binder.pop("torch") == course["torch"] + "+cpu", "torch must be the CPU build of the course's pin"
    text = (BINDER / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text.splitlines()
    different = {name: (pin, course.get(name)) for name, pin in binder.items() if course.get(name) != pin}
    assert not different, f"binder/requirements.txt pins differ from requirements.txt: {different}"
    for needed in ("jupyterlab", "nbgrader", "numpy", "matplotlib", "safetensors", "nbformat"):
        assert needed in binder, f"a learner on Binder needs {needed}"
    assert "pytest" not in binder and "jupyter-book" not in binder, "Binder is for learners: no test or book tools"
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"


def test_post_build_installs_the_course_and_hides_the_instructor_panels(tmp_path):
    script = (BINDER / "postBuild").read_text()
    assert os.access(BINDER / "postBuild", os.X_OK), "repo2docker runs postBuild only when it is executable"
    assert "pip install --no-cache-dir --no-deps ." in script
    # The image's sys-prefix configuration as nbgrader's install leaves it (the disable commands
    # only switch off what is configured there), copied to a temporary user-level folder.
    config = tmp_path / "config"
    (config / "jupyter_server_config.d").mkdir(parents=True)
    installed = Path(sys.prefix, "etc", "jupyter", "jupyter_server_config.d", "nbgrader.json")
    shutil.copy(installed, config / "jupyter_server_config.d" / "nbgrader.json")
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config))
    bin_dir = Path(sys.executable).parent
    commands = [line for line in script.splitlines() if line.startswith("jupyter ")]
    assert len(commands) == len(INSTRUCTOR_PLUGINS) + len(INSTRUCTOR_SERVER)
    for line in commands:
        words = shlex.split(line.replace("--level=sys_prefix", "--level=user").replace("--sys-prefix", "--user"))
        run = subprocess.run([str(bin_dir / "jupyter"), *words[1:]], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
    page = json.loads((config / "labconfig" / "page_config.json").read_text())
    disabled = {name for name, off in page["disabledExtensions"].items() if off}
    assert disabled == set(INSTRUCTOR_PLUGINS)
    # What the server will load, merged by jupyter_server itself (the commands exit 0 even when
    # they change nothing, so only the resulting configuration tells).
    from jupyter_server.extension.config import ExtensionConfigManager

    switched = ExtensionConfigManager(read_config_path=[str(config)]).get_jpserver_extensions()
    assert all(switched[name] is False for name in INSTRUCTOR_SERVER), switched
    assert switched["nbgrader.server_extensions.assignment_list"] is True, "learners keep their assignment list"
    assert switched["nbgrader.server_extensions.validate_assignment"] is True, "and Validate"
