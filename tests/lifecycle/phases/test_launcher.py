"""The launcher script: selection, defaults that yield to the environment, argument passing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lifecycle.errors import BuildError
from lifecycle.hookspecs import Process
from lifecycle.phases import launcher


def run(script: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", str(script), *args], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, check=False)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    procs = [
        Process("api", ("/bin/sh", "-c", 'echo "api $PORT $STAGE [$*] $(pwd)"', "sh"),
                defaults={"PORT": "8080", "STAGE": "it's dev"}, working_dir=str(tmp_path)),
        Process("worker", ("/bin/echo", "worker"), defaults={"PORT": "9"}, default=True,
                working_dir="/"),
    ]
    path = tmp_path / "launcher"
    path.write_bytes(launcher.render(procs, launcher.default_process(procs)))
    return path


def test_default_process_runs_without_selection(script: Path) -> None:
    assert run(script, {}).stdout.strip() == "worker"


def test_defaults_apply_only_where_unset_and_args_pass_through(script: Path,
                                                               tmp_path: Path) -> None:
    out = run(script, {"HYBRIDLESS_PROCESS": "api"}, "a b", "c").stdout.strip()
    assert out == f"api 8080 it's dev [a b c] {tmp_path}"
    out = run(script, {"HYBRIDLESS_PROCESS": "api", "PORT": "1", "STAGE": ""}).stdout.strip()
    assert out.startswith("api 1  [")


def test_unknown_process_exits_125_listing_processes(script: Path) -> None:
    result = run(script, {"HYBRIDLESS_PROCESS": "nope"})
    assert result.returncode == 125
    assert "unknown process 'nope' (processes: api, worker)" in result.stderr


def test_render_is_deterministic_and_rejects_bad_names() -> None:
    procs = [Process("a", ("x",), defaults={"B": "1", "A": "2"})]
    assert launcher.render(procs, procs[0]) == launcher.render(procs, procs[0])
    with pytest.raises(BuildError):
        launcher.render([Process("a;rm", ("x",))], procs[0])
    with pytest.raises(BuildError):
        launcher.render([Process("a", ("x",), defaults={"A-B": "1"})], procs[0])
    with pytest.raises(BuildError, match="not a process"):
        launcher.default_process(procs, "zzz")
