"""Done-when for third-party authoring: real pip installs into a fresh virtual environment.

One venv (with the system site-packages, so the lifecycle's dependencies need no download)
gets, by ``pip install``: this project, the example static-site buildpack, a package fresh from
``buildpacks new``, and a plugin that fails on import. Then, with the venv's interpreter:
``buildpacks --json`` lists both buildpacks with their distribution and version and reports
the broken plugin by name; ``build`` uses each of them by default detection on the busybox
base, and a Procfile app still builds; and each package's own tests pass with the fixtures of
``lifecycle.testing``, which reach them through the ``pytest11`` entry point only.

Building wheels needs setuptools 70.1 or newer (older ones need the ``wheel`` package), which
pip fetches from PyPI into the venv once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifecycle.image import reference, transports
from lifecycle.testing import image_files
from tests.infra.cli import REPO_ROOT, CliRunner
from tests.infra.images import BaseImage
from tests.infra.services import unavailable

EXAMPLE = REPO_ROOT / "examples" / "buildpacks" / "static-site"
SKIP = shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules", "build", "dist")
BROKEN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "hybridless-broken"
version = "0.0.1"

[project.entry-points."hybridless.buildpacks"]
broken = "broken_bp"

[tool.setuptools]
py-modules = ["broken_bp"]
"""


@dataclass(frozen=True)
class Env:
    """The venv and the package copies installed into it."""

    python: Path
    static_site: Path
    greeter: Path
    cli: CliRunner

    def run(self, argv: Sequence[str | Path], cwd: Path, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
        """Run a command with the venv's environment (no PYTHONPATH: installs only)."""
        return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False,
                              env=self.cli.environment({"PYTHONPATH": ""}))


def _project_copy(dest: Path) -> Path:
    """This project's packaging inputs, copied so pip's build leaves the checkout untouched."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, dest / name)
    for package in ("lifecycle", "buildpacks", "stacks"):
        if (REPO_ROOT / package).is_dir():
            shutil.copytree(REPO_ROOT / package, dest / package, ignore=SKIP)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Env:
    """The venv with all four packages pip-installed."""
    root = tmp_path_factory.mktemp("venv-install")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    cli = CliRunner(home=root / "home", cache=root / "cache", command=(str(python), "-m",
                                                                         "lifecycle"))
    project = _project_copy(root / "hybridless-lifecycle")
    static_site = shutil.copytree(EXAMPLE, root / "static-site", ignore=SKIP)
    greeter = root / "greeter"
    made = CliRunner(home=root / "home", cache=root / "cache")(
        "buildpacks", "new", "acme/greeter", "--dir", greeter)
    assert made.returncode == 0, made.stderr
    broken = root / "broken"
    broken.mkdir()
    (broken / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (broken / "broken_bp.py").write_text("raise ImportError('broken on purpose')\n")

    env = Env(python, static_site, greeter, cli)
    pip: list[str | Path] = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    tools = env.run([*pip, "setuptools>=70.1"], cwd=root)
    if tools.returncode != 0:
        unavailable("setuptools>=70.1 from PyPI", tools.stderr.strip()[-500:])
    done = env.run([*pip, "--no-deps", "--no-build-isolation", project, static_site, greeter,
                    broken], cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


def _json(env: Env, *args: Any, cwd: Path) -> Any:
    result = env.cli(*args, "--json", cwd=cwd, env={"PYTHONPATH": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_venv_runs_its_own_install(installed: Env, tmp_path: Path) -> None:
    where = installed.run([installed.python, "-c", "import lifecycle; print(lifecycle.__file__)"],
                          cwd=tmp_path)
    assert where.returncode == 0 and str(installed.python.parent.parent) in where.stdout


def test_buildpacks_lists_both_with_distribution_and_the_broken_plugin(installed: Env,
                                                                       tmp_path: Path) -> None:
    rows = _json(installed, "buildpacks", cwd=tmp_path)
    by_id = {row["id"]: row for row in rows if not row.get("error")}
    assert (by_id["examples/static-site"]["distribution"],
            by_id["examples/static-site"]["distribution_version"]) == (
        "hybridless-static-site", "1.0.0")
    assert (by_id["acme/greeter"]["distribution"],
            by_id["acme/greeter"]["distribution_version"]) == ("hybridless-acme-greeter", "0.1.0")
    assert by_id["hybridless/procfile"]["distribution"] == "hybridless-lifecycle"
    (broken,) = [row for row in rows if row.get("error")]
    assert (broken["plugin"], broken["distribution"]) == ("broken", "hybridless-broken")
    assert "ImportError: broken on purpose" in broken["error"]


def test_build_uses_each_installed_buildpack(installed: Env, busybox_base: BaseImage,
                                             tmp_path: Path) -> None:
    apps = {
        "site": ({"public/index.html": "<h1>installed</h1>"}, "examples/static-site", "web"),
        "greet": ({"greeter.txt": "world"}, "acme/greeter", "greeter"),
        "proc": ({"Procfile": "web: echo hello\n"}, "hybridless/procfile", "web"),
    }
    for name, (files, buildpack, process) in apps.items():
        app = tmp_path / name
        for rel, content in files.items():
            (app / rel).parent.mkdir(parents=True, exist_ok=True)
            (app / rel).write_text(content)
        out = f"oci:{tmp_path / 'images'}:{name}"
        document = _json(installed, "build", app, "--image", out, "--run-image",
                         busybox_base.ref, cwd=tmp_path)
        assert [p["name"] for p in document["processes"]] == [process], name
        label = json.loads(transports.read_image(reference.parse(out)).labels[
            "io.hybridless.build"])
        assert [bp["id"] for bp in label["buildpacks"]] == [buildpack]
    site = image_files(transports.read_image(reference.parse(f"oci:{tmp_path / 'images'}:site")))
    assert site.read_text("/layers/examples_static-site/site/index.html") == "<h1>installed</h1>"
    assert site.exists("/bin/busybox")  # built on the real base, which has an httpd


@pytest.mark.parametrize("package", ["static_site", "greeter"])
def test_package_tests_pass_with_the_pytest11_plugin(installed: Env, package: str) -> None:
    where: Path = getattr(installed, package)
    result = installed.run([installed.python, "-m", "pytest", "-v", "-p", "no:cacheprovider"],
                           cwd=where)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_entry_point_is_installed PASSED" in result.stdout
