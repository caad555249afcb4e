"""The files no image gets unless the project asks for them: the secrets list.

One list, kept by the engine, for every buildpack: which buildpack detected an app must not
decide whether its ``.env`` is shipped. It applies to the app layer (``/var/task``) and to any
other build context made from the app directory. Each entry says why it is on the list. An
app can still ship such a file by naming it in the descriptor's ``include`` with a pattern
whose last part is not just ``*`` or ``**`` (``include = ["**", ".env"]``): a blanket pattern
is not a decision to ship credentials. Each file left out is named once in the build output,
because an app that reads ``.env`` at run time behaves differently without it.

``.git`` is not here: the tree scan drops it always (history is never part of an image).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    """One pattern of the secrets list (project.toml include/exclude syntax) and why."""

    pattern: str
    why: str


SECRETS: tuple[Rule, ...] = (
    Rule(".env", "dotenv files hold local credentials and settings for development"),
    Rule(".env.*", "per-environment dotenv files (.env.production) hold the same"),
    Rule(".npmrc", "npm registry tokens (_authToken)"),
    Rule(".yarnrc", "Yarn 1 registry tokens (_authToken)"),
    Rule(".yarnrc.yml", "Yarn registry tokens (npmAuthToken)"),
    Rule(".netrc", "passwords for hosts that pip, curl and git log in to"),
    Rule(".pypirc", "PyPI upload tokens"),
    Rule("pip.conf", "pip index URLs, which may embed credentials"),
    Rule("pip.ini", "the same, under its Windows name"),
    Rule(".git-credentials", "git's stored passwords and tokens"),
    Rule("id_rsa*", "SSH private keys (and their .pub halves, harmless but useless)"),
    Rule("id_dsa*", "SSH private keys"),
    Rule("id_ecdsa*", "SSH private keys"),
    Rule("id_ed25519*", "SSH private keys"),
    Rule(".ssh/", "SSH keys and known hosts"),
    Rule(".aws/", "AWS access keys (credentials, config with SSO caches)"),
    Rule("**/.docker/config.json", "registry passwords written by docker login"),
)
"""Matched against app-relative paths; a pattern without ``/`` matches at any depth."""

DESCRIPTOR_WHY = "the descriptor holds build-time env values; the image has no use for it"


def patterns(app_dir: Path, descriptor: Path | None) -> tuple[str, ...]:
    """The secrets list for one app: :data:`SECRETS` plus the descriptor when it is inside."""
    extra: list[str] = ["/project.toml"]
    if descriptor is not None:
        rel = os.path.relpath(os.path.realpath(descriptor), os.path.realpath(app_dir))
        if not rel.startswith(("..", os.sep)) and rel != "project.toml":
            extra.append("/" + _escape(rel.replace(os.sep, "/")))
    return (*(rule.pattern for rule in SECRETS), *extra)


def message(rel: str) -> str:
    """The one line a build prints for a file or directory the list kept out."""
    return f"excluded {printable(rel)} (secrets list; add it to include to ship it)"


def printable(rel: str) -> str:
    """A path as text that any terminal takes: undecodable bytes become ``\\xNN``."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def _escape(name: str) -> str:
    """A literal path as a pattern: glob characters lose their meaning."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
