"""Meta-tests: every hook and public type of lifecycle/hookspecs.py is documented and tested.

The items come from the module itself (``contract.items()``), so a new hook or type fails
these tests until docs/AUTHORING.md has a heading with its exact signature and a runnable
example, and a test claims it with ``@pytest.mark.covers(NAME)``. Every Python example in the
document is run here.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.authoring import contract
from tests.infra.cli import REPO_ROOT

DOC = REPO_ROOT / "docs" / "AUTHORING.md"
TESTS_DIR = Path(__file__).parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PYTEST_FILE = re.compile(r"\A# (test_\w+\.py)\n")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the document."""

    language: str
    code: str
    line: int

    @property
    def pytest_file(self) -> str | None:
        """The file name when the block is a pytest module (first line ``# test_x.py``)."""
        match = PYTEST_FILE.match(self.code)
        return match.group(1) if match else None


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with their starting line."""
    return [Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in FENCE.finditer(text)]


def undocumented(items: Iterable[contract.Item], text: str) -> list[str]:
    """Keys of items without their exact heading, or without a Python example in their section.

    An item's section runs from its heading to the next ``##`` heading, so items documented
    together (``Prepend``, ``Append``…) may share one example.
    """
    missing = []
    lines = text.splitlines()
    for item in items:
        if item.heading not in lines:
            missing.append(f"{item.key}: no heading {item.heading!r}")
            continue
        rest = lines[lines.index(item.heading) + 1:]
        end = next((i for i, line in enumerate(rest) if line.startswith("## ")), len(rest))
        if "```python" not in rest[:end]:
            missing.append(f"{item.key}: no ```python example before the next section")
    return missing


def stale_headings(items: Iterable[contract.Item], text: str) -> list[str]:
    """Signature headings that match no item (a signature changed, or a name went away)."""
    known = {item.heading for item in items}
    return [line for line in text.splitlines()
            if line.startswith("### `") and line not in known]


def covered(modules: Sequence[str]) -> dict[str, list[str]]:
    """Contract keys claimed by ``covers`` markers in the test modules, → the tests claiming."""
    claims: dict[str, list[str]] = {}
    for name in modules:
        module = importlib.import_module(name)
        for attr, test in vars(module).items():
            if not attr.startswith("test") or not callable(test):
                continue
            for mark in getattr(test, "pytestmark", []):
                if mark.name == "covers":
                    for key in mark.args:
                        claims.setdefault(key, []).append(f"{name}.{attr}")
    return claims


def untested(items: Iterable[contract.Item], claims: dict[str, list[str]]) -> list[str]:
    """Keys of items no test claims."""
    return [item.key for item in items if item.key not in claims]


def test_modules() -> list[str]:
    """The authoring test modules, by import name."""
    return [f"tests.authoring.{path.stem}" for path in sorted(TESTS_DIR.glob("test_*.py"))]


test_modules.__test__ = False  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- the meta-tests


def test_contract_is_discovered_from_the_module() -> None:
    keys = [item.key for item in contract.items()]
    # Spot checks that discovery sees each kind of item; the full list is never written down.
    assert {"hybridless_buildpacks", "BuildContext.run", "DetectResult", "Buildpack",
            "BUILDPACK_API", "EnvValue", "hookimpl"} <= set(keys)
    assert len(keys) == len(set(keys))


def test_every_item_is_documented_with_its_exact_signature() -> None:
    assert undocumented(contract.items(), DOC.read_text(encoding="utf-8")) == []


def test_no_heading_documents_a_signature_that_no_longer_exists() -> None:
    assert stale_headings(contract.items(), DOC.read_text(encoding="utf-8")) == []


def test_every_item_has_a_test() -> None:
    claims = covered(test_modules())
    assert untested(contract.items(), claims) == []
    unknown = set(claims) - {item.key for item in contract.items()}
    assert not unknown, f"covers() names that are not contract items: {sorted(unknown)}"


def test_meta_tests_fail_when_a_heading_or_example_goes_missing() -> None:
    items = contract.items()
    text = DOC.read_text(encoding="utf-8")
    hook = next(item for item in items if item.key == "hybridless_buildpacks")
    assert undocumented(items, text.replace(hook.heading + "\n", "")) == [
        f"hybridless_buildpacks: no heading {hook.heading!r}"]
    assert stale_headings(items, text.replace("-> RunResult`", "-> None`", 1)) != []
    # One "##" section per item, each with an example; then take one example away.
    sections = {item.key: f"## {item.key}\n{item.heading}\n\n```python\npass\n```\n"
                for item in items}
    assert undocumented(items, "\n".join(sections.values())) == []
    sections["DetectResult.fails"] = sections["DetectResult.fails"].split("```")[0]
    assert undocumented(items, "\n".join(sections.values())) == [
        "DetectResult.fails: no ```python example before the next section"]


def test_meta_tests_fail_when_a_test_goes_missing() -> None:
    items = contract.items()
    claims = covered(test_modules())
    claims.pop("BuildContext.layer")
    assert untested(items, claims) == ["BuildContext.layer"]


# ------------------------------------------------------------------------------- the examples


DOC_BLOCKS = blocks(DOC.read_text(encoding="utf-8"))
PYTHON = [b for b in DOC_BLOCKS if b.language == "python" and b.pytest_file is None]
PYTEST_FILES = [b for b in DOC_BLOCKS if b.language == "python" and b.pytest_file]


def test_the_document_has_examples_of_each_kind() -> None:
    assert len(PYTHON) >= 25 and PYTEST_FILES
    assert {b.language for b in DOC_BLOCKS} <= {"python", "toml", "console", ""}


@pytest.mark.parametrize("block", PYTHON, ids=[f"line{b.line}" for b in PYTHON])
def test_python_example_runs(block: Block) -> None:
    code = compile(block.code, f"{DOC.name}:{block.line}", "exec")
    exec(code, {"__name__": f"authoring_example_{block.line}"})


@pytest.mark.parametrize("block", PYTEST_FILES, ids=[f"line{b.line}" for b in PYTEST_FILES])
def test_pytest_example_passes_with_the_plugin(block: Block, tmp_path: Path) -> None:
    assert block.pytest_file is not None
    (tmp_path / block.pytest_file).write_text(block.code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    # -p loads the plugin by module name; when the entry point is installed it is the same
    # plugin (the entry point is named like the module), so it is not registered twice.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "lifecycle.testing", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / block.pytest_file)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_toml_examples_parse() -> None:
    import tomli

    tomls = [b for b in DOC_BLOCKS if b.language == "toml"]
    assert tomls
    for block in tomls:
        tomli.loads(block.code)
