"""The exit-code tables in the docs list exactly the codes the commands emit; every other
code an error class carries is named, in the text that follows the table, as arriving later."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lifecycle import errors

ROOT = Path(__file__).resolve().parents[2]
# 0 is success and 1 is the traceback path of cli.main: neither is an error class.
NOT_CLASSES = {0, 1}


def _class_codes() -> set[int]:
    classes = [cls for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, errors.LifecycleError)]
    return {cls.exit_code for cls in classes}


def _table_and_after(text: str) -> tuple[set[int], str]:
    """The codes in the first column of the exit-code table, and the text after the table."""
    section = text.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    codes = {int(code) for row in rows for code in re.findall(r"\b\d+\b", row.split("|")[1])}
    after = section[section.index(rows[-1]) + len(rows[-1]):]
    return codes, after


@pytest.mark.parametrize("doc", ["docs/reference.md", "README.md"])
def test_the_table_lists_emitted_codes_and_the_text_names_the_rest(doc: str) -> None:
    table, after = _table_and_after((ROOT / doc).read_text())
    assert table - NOT_CLASSES <= _class_codes(), "a documented code that no error class has"
    later = _class_codes() - table
    unnamed = {code for code in later if not re.search(rf"\b{code}\b", after)}
    assert unnamed == set(), "error classes whose code the docs do not mention"
