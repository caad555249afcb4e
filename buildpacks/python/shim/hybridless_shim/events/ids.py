"""Request ids: version-4 UUID strings, unique within and across processes."""

from __future__ import annotations

import itertools
import os

# Version 4 lives in bits 76-79 and the RFC 4122 variant (binary 10) in bits 62-63.
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET = (0x4 << 76) | (0x2 << 62)
_ID_PREFIX = ""
_ID_MASK = (1 << 48) - 1
_ids = itertools.count()


def _reseed_ids() -> None:
    # Request ids need to be unique, not unpredictable: 74 random bits per process plus a
    # 48-bit counter are, and one format per id is several times cheaper than uuid4().
    global _ID_PREFIX, _ids
    h = "%032x" % ((int.from_bytes(os.urandom(16), "big") & _UUID4_CLEAR) | _UUID4_SET)
    _ID_PREFIX = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-"
    _ids = itertools.count(int(h[20:], 16))


_reseed_ids()
if hasattr(os, "register_at_fork"):
    # A forked child must not repeat its parent's ids.
    os.register_at_fork(after_in_child=_reseed_ids)


# A 49th bit so that hex() always gives 13 digits: the id keeps the last 12, zero-padded
# without a format spec, whose parsing costs several times hex() itself.
_ID_PAD = 1 << 48


def request_id() -> str:
    """A version-4 UUID string, unique within and across processes."""
    return _ID_PREFIX + hex((next(_ids) & _ID_MASK) | _ID_PAD)[3:]
