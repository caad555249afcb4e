"""The exit-code tables in the docs list exactly the codes the error hierarchy emits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lifecycle import errors

ROOT = Path(__file__).resolve().parents[2]
# 0 is success and 1 is the traceback path of cli.main: neither is an error class.
NOT_CLASSES = {0, 1}


def _emitted() -> set[int]:
    classes = [cls for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, errors.LifecycleError)]
    return {cls.exit_code for cls in classes} | NOT_CLASSES


def _table_codes(text: str) -> set[int]:
    section = text.split("### Exit codes", 1)[1].split("\n\n", 2)[1]
    codes: set[int] = set()
    for row in section.splitlines():
        cell = row.split("|")[1] if row.startswith("|") else ""
        codes.update(int(code) for code in re.findall(r"\b\d+\b", cell))
    return codes


@pytest.mark.parametrize("doc", ["docs/reference.md", "README.md"])
def test_exit_code_tables_match_the_error_classes(doc: str) -> None:
    assert _table_codes((ROOT / doc).read_text()) == _emitted()

