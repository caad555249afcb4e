"""``examples/ci/github-actions.yml`` is a valid workflow whose steps are the lifecycle-image
test's (tests/e2e/test_lifecycle_image.py): the same script, mounts and build arguments."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from typing import Any

import yaml

from tests.infra.cli import REPO_ROOT
from tests.infra.services import unavailable

WORKFLOW = REPO_ROOT / "examples" / "ci" / "github-actions.yml"
SCRIPT = "examples/ci/build-lifecycle-image.sh"
CA = "/etc/ssl/certs/ca-certificates.crt"


def _workflow() -> dict[Any, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _words(run: str) -> list[str]:
    return shlex.split(run.replace("\\\n", " "), comments=False)


def test_the_workflow_parses_with_its_triggers_and_two_jobs() -> None:
    workflow = _workflow()
    # YAML 1.1 reads the bare key `on` as true; GitHub reads it as the triggers.
    assert set(workflow.get("on", workflow.get(True))) == {"push", "workflow_dispatch"}
    assert set(workflow["jobs"]) == {"lifecycle-image", "build"}
    assert workflow["jobs"]["build"]["needs"] == "lifecycle-image"
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            assert set(step) <= {"name", "id", "if", "run", "uses", "with", "env"}, step


def test_the_lifecycle_image_is_built_by_the_documented_script() -> None:
    runs = _runs(_workflow()["jobs"]["lifecycle-image"])
    assert any(SCRIPT in run for run in runs)
    script = REPO_ROOT / SCRIPT
    assert script.is_file() and os.access(script, os.X_OK)


def test_the_build_runs_the_image_with_no_socket_as_the_test_does() -> None:
    (run,) = [r for r in _runs(_workflow()["jobs"]["build"])
              if r.startswith("docker run") and "$LIFECYCLE_IMAGE" in r]
    words = _words(run)
    assert "/var/run/docker.sock" not in run
    assert words[words.index("--network") + 1] == "host"
    mounts = [words[i + 1] for i, word in enumerate(words) if word == "-v"]
    assert f"{CA}:{CA}:ro" in mounts
    assert "$GITHUB_WORKSPACE:/workspace/app:ro" in mounts
    build = words[words.index("$LIFECYCLE_IMAGE") + 1:]
    assert build[:2] == ["build", "/workspace/app"]
    assert build[build.index("--image") + 1].startswith("docker://")
    assert build[build.index("--run-image") + 1].startswith("docker://")
    # The registry cache, as the test's second job uses it: the branch tag is the previous
    # image, and the cache image sits beside it.
    branch = build[build.index("--tag") + 1]
    assert branch.endswith(":main") and build[build.index("--previous-image") + 1] == branch
    assert build[build.index("--cache-image") + 1].endswith(":build-cache")


def test_the_script_and_every_step_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        unavailable("shellcheck", "not on PATH")
    scripts = {SCRIPT: (REPO_ROOT / SCRIPT).read_text()}
    for job_name, job in _workflow()["jobs"].items():
        for step in job["steps"]:
            if "run" in step:
                scripts[f"{job_name}: {step.get('name')}"] = step["run"]
    for name, text in scripts.items():
        # GitHub runs each step with bash; values reach it through the environment only.
        assert "${{" not in text, f"{name} splices an expression into the script"
        result = subprocess.run([shellcheck, "--shell=bash", "-"], input=text, text=True,
                                capture_output=True, timeout=60, check=False)
        assert result.returncode == 0, f"{name}:\n{result.stdout}"
