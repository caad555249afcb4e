"""Detect through the real CLI: which apps the Python buildpack claims, and what it infers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import copy_example, run_json
from tests.infra.cli import CliRunner

PYTHON = "hybridless/python"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def python_vote(doc: dict[str, Any]) -> dict[str, Any]:
    return next(result for trial in doc["trials"] for result in trial["results"]
                if result["id"] == PYTHON)


def test_a_descriptorless_app_gets_one_inferred_httpd_function(cli: CliRunner,
                                                               tmp_path: Path) -> None:
    app = copy_example("python-hello", tmp_path)
    result = cli("detect", app)
    assert result.returncode == 0, result.stderr
    assert "inferred function 'main': httpd handler.handler" in result.stderr
    doc = run_json(cli, "detect", app)
    assert doc["group"] == [{"id": PYTHON, "version": "0.1.0"}]
    assert (doc["functions"], doc["inferred"]) == (["main"], True)


def test_inference_prefers_the_candidate_that_defines_handler(cli: CliRunner,
                                                              tmp_path: Path) -> None:
    app = write(tmp_path / "app", {
        "pyproject.toml": '[project]\nname = "x"\nversion = "1"\ndependencies = []\n',
        "handler.py": "from app import handler as _unused  # re-exports only\n",
        "app.py": "from mangum import Mangum\nhandler = Mangum(object())\n",
        "main.py": "def handler(event, context):\n    return {}\n",
    })
    doc = run_json(cli, "detect", app, "--buildpack", PYTHON)
    assert python_vote(doc)["reason"] == "found pyproject.toml; handler app.handler"


def test_a_manifest_without_any_handler_file_is_refused_with_a_reason(
        cli: CliRunner, tmp_path: Path) -> None:
    app = write(tmp_path / "app", {"requirements.txt": "requests\n", "lib.py": ""})
    doc = run_json(cli, "detect", app, "--buildpack", PYTHON, expect=20)
    assert "none of handler.py, app.py, main.py" in python_vote(doc)["reason"]


def test_a_handler_file_alone_is_not_claimed_without_a_manifest_or_descriptor(
        cli: CliRunner, tmp_path: Path) -> None:
    app = write(tmp_path / "app", {"handler.py": "def handler(e, c):\n    return 1\n"})
    doc = run_json(cli, "detect", app, "--buildpack", PYTHON, expect=20)
    assert python_vote(doc)["passed"] is False


def test_a_descriptor_py_handler_is_enough(cli: CliRunner, tmp_path: Path) -> None:
    app = write(tmp_path / "app", {
        "src/jobs/report.py": "def run(event, context):\n    return None\n",
        "project.toml": ('[_]\nschema-version = "0.2"\nid = "t.py"\n'
                         '[[io.hybridless.functions]]\nname = "report"\n'
                         'handler = "src/jobs/report.run"\nevent = "scheduledTask"\n'),
    })
    doc = run_json(cli, "detect", app)
    assert doc["group"][0]["id"] == PYTHON
    assert (doc["functions"], doc["inferred"]) == (["report"], False)


def test_a_descriptor_mixing_runtimes_needs_an_explicit_group(cli: CliRunner,
                                                              tmp_path: Path) -> None:
    app = write(tmp_path / "app", {
        "requirements.txt": "",
        "api.py": "def handler(e, c):\n    return {}\n",
        "project.toml": ('[_]\nschema-version = "0.2"\nid = "t.mixed"\n'
                         '[[io.hybridless.functions]]\nname = "api"\nhandler = "api.handler"\n'
                         '[[io.hybridless.functions]]\nname = "web"\nhandler = "web.handler"\n'
                         'runtime = "nodejs20"\n'),
    })
    doc = run_json(cli, "detect", app, "--buildpack", PYTHON, expect=20)
    assert "web are not Python" in python_vote(doc)["reason"]


INSTALL_PROJECT = """[_]
id = "test.tool"

[[io.buildpacks.group]]
id = "hybridless/python"

[[io.buildpacks.group]]
id = "hybridless/procfile"

[io.hybridless.buildpacks."hybridless/python"]
install-project = true

[[io.hybridless.functions]]
name = "tool"
command = ["tool"]
event = "process"
runtime = "python3.11"
"""


def test_install_project_claims_command_functions_beside_the_procfile_buildpack(
        cli: CliRunner, tmp_path: Path) -> None:
    app = write(tmp_path / "app", {
        "pyproject.toml": '[project]\nname = "tool"\nversion = "1"\n'
                          '[project.scripts]\ntool = "tool:main"\n',
        "tool.py": "def main():\n    return 0\n",
        "project.toml": INSTALL_PROJECT,
    })
    doc = run_json(cli, "detect", app)
    assert [bp["id"] for bp in doc["group"]] == [PYTHON, "hybridless/procfile"]
    assert python_vote(doc)["reason"].startswith("install-project")


def test_install_project_without_a_pyproject_fails_detect_with_the_reason(
        cli: CliRunner, tmp_path: Path) -> None:
    app = write(tmp_path / "app", {"requirements.txt": "six\n", "project.toml": INSTALL_PROJECT})
    result = cli("detect", app)
    assert result.returncode == 20, result.stderr
    assert "install-project is set but there is no pyproject.toml" in result.stderr


def test_install_project_must_be_a_boolean(cli: CliRunner, tmp_path: Path) -> None:
    app = write(tmp_path / "app", {
        "pyproject.toml": '[project]\nname = "tool"\nversion = "1"\n',
        "project.toml": INSTALL_PROJECT.replace("install-project = true",
                                                'install-project = "yes"'),
    })
    result = cli("detect", app)
    assert result.returncode == 11, result.stderr
    assert "install-project" in result.stderr
