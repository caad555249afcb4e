"""Canonical JSON: the one serialisation used for every document whose digest matters."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> bytes:
    """Serialise ``value`` canonically: sorted keys, no spaces, raw UTF-8 (not ``\\u`` escapes)."""
    # Digests of configs and manifests are computed over these bytes, so two writers must agree
    # byte for byte: sorted keys and fixed separators remove the only freedom json.dumps has.
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse a JSON document given as UTF-8 bytes or text."""
    return json.loads(data)
