"""Host paths to the paths a build container sees.

Buildpacks run on the build host and hand their commands host paths: a layer's ``path``, the
app directory, a secret's file, and the variables built from them (``PATH``,
``npm_config_nodedir``). The container mounts each of those directories at its path in the
image (``/layers/<buildpack>/<layer>``, ``/var/task``, ``/run/secrets``), and this map rewrites
every host prefix in argv, env and cwd to that path before a command starts.

Why translate rather than mount at the host's own paths: whatever a command records (a
shebang, node-gyp's ``config.gypi``, a ``.pth`` file, debug info) then names the path the file
has in the image, so layers work at run time and their digests do not depend on where the
project or the cache sits on the build host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class PathMap:
    """Host directory → container directory pairs; the longest host prefix wins."""

    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, pairs: Mapping[str, str]) -> PathMap:
        """A map from host directories (absolute) to container directories."""
        cleaned = {str(PurePosixPath(host)): str(PurePosixPath(inside))
                   for host, inside in pairs.items()}
        for host in cleaned:
            if not host.startswith("/") or host == "/":
                raise ValueError(f"cannot map {host!r}: not an absolute directory below /")
        return cls(tuple(sorted(cleaned.items(), key=lambda kv: -len(kv[0]))))

    @property
    def _pattern(self) -> re.Pattern[str]:
        # A prefix counts only where a path component ends: '/a/layers' must not rewrite
        # '/a/layers2'. A path starts the value or follows a separator ('=', ':', space…).
        alternatives = "|".join(re.escape(host) for host, _ in self.pairs)
        return re.compile(rf"(?:(?<=^)|(?<=[=:;,\s\"'(]))({alternatives})(?=/|$|[:;,=\s\"')])")

    def translate(self, text: str) -> str:
        """``text`` with every mapped host path rewritten to its container path."""
        if not self.pairs or "/" not in text:
            return text
        lookup = dict(self.pairs)
        return self._pattern.sub(lambda m: lookup[m.group(1)], text)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """Each argument translated."""
        return [self.translate(arg) for arg in argv]

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        """Each value translated (names are left alone)."""
        return {key: self.translate(value) for key, value in env.items()}
