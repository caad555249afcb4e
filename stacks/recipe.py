"""Recipe images: a Debian root filesystem made by mmdebstrap, as one reproducible tar.

mmdebstrap runs as root (``--mode=root``) or, for other users, in a user namespace
(``--mode=unshare``, which needs subordinate ids in ``/etc/subuid`` and ``/etc/subgid``).
With ``SOURCE_DATE_EPOCH`` set it writes a bit-for-bit reproducible tar: sorted entries and
file times clamped to the epoch. The stack's user is added by a customize hook
(:mod:`stacks.rootfs`) before the tar is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from lifecycle.errors import BaseImageFetchError
from stacks.model import Recipe, User
from stacks.release import apt_lines

FORMAT = 1
"""Bump when the way a recipe becomes an image changes, so stored recipe images are rebuilt."""

STORE_REPOSITORY = "hybridless-stacks"
TIMEOUT_S = 1800
# Documentation and translations are a third of the bytes and nothing at run time reads them;
# copyright files stay, as Debian's licences ask.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)


@dataclass(frozen=True)
class RecipeImage:
    """One image to make from a recipe: which role it plays and for which stack's user."""

    recipe: Recipe
    user: User
    role: str
    """``build`` or ``run``."""
    platform: str
    stack_id: str | None
    """The stack recorded in ``io.hybridless.stack`` (run images only; build images are
    shared by the stacks of one suite)."""

    @property
    def key(self) -> str:
        """A short hash of everything the image's content depends on except the Release dates."""
        document = {"format": FORMAT, **asdict(self)}
        text = json.dumps(document, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def store_name(self) -> str:
        """Where the image lives in the local store: stable across refreshes of one recipe."""
        return f"{STORE_REPOSITORY}/{self.recipe.suite}-{self.role}:{self.key}"


def unable_reason() -> str | None:
    """Why mmdebstrap cannot run here, or ``None`` when it can."""
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed (Debian package mmdebstrap)"
    if os.geteuid() == 0:
        return None
    user = _login_name()
    for name in ("/etc/subuid", "/etc/subgid"):
        try:
            owners = {line.split(":", 1)[0] for line in Path(name).read_text().splitlines()}
        except OSError:
            owners = set()
        if user not in owners and str(os.getuid()) not in owners:
            return f"{name} gives {user} no subordinate ids (needed by mmdebstrap --mode=unshare)"
    return None


def mode() -> str:
    """mmdebstrap's mode for this process: root when we are root, else a user namespace."""
    return "root" if os.geteuid() == 0 else "unshare"


def argv(image: RecipeImage, output: Path) -> list[str]:
    """The mmdebstrap command that writes ``image``'s root filesystem as the tar ``output``."""
    recipe = image.recipe
    architecture = image.platform.split("/")[1]
    return [
        "mmdebstrap",
        f"--mode={mode()}",
        "--variant=essential",
        f"--architectures={architecture}",
        f"--include={','.join(recipe.packages)}" if recipe.packages else "--include=",
        '--aptopt=Acquire::Languages "none"',
        # No fsync per file: the tree is thrown away if the build dies.
        "--dpkgopt=force-unsafe-io",
        *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
        f"--customize-hook={_finish_hook(image.user)}",
        "--skip=output/dev",  # device nodes: the engine provides /dev at run time
        recipe.suite,
        str(output),
        *apt_lines(recipe),
    ]


def build_rootfs(image: RecipeImage, output: Path, epoch: int, log: Path) -> None:
    """Run mmdebstrap for ``image`` with ``SOURCE_DATE_EPOCH=epoch``; its output goes to ``log``."""
    reason = unable_reason()
    if reason is not None:
        raise BaseImageFetchError(
            f"failed to build the {image.role} image of recipe {image.recipe.suite}: {reason}",
            hint="install mmdebstrap (as root, or with subordinate ids), or use a reference "
            "stack or --run-image",
        )
    command = argv(image, output)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    with log.open("ab") as sink:
        try:
            done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                  timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as error:
            raise BaseImageFetchError(
                f"failed to build {image.store_name}: mmdebstrap ran over {TIMEOUT_S} s",
                hint=f"see its log in {log}",
            ) from error
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise BaseImageFetchError(
            f"failed to build {image.store_name}: mmdebstrap exited {done.returncode}: {tail[0]}",
            hint=f"see its whole log in {log}; a missing package name or mirror is the usual "
            "cause",
        )


def _finish_hook(user: User) -> str:
    """The customize hook: :mod:`stacks.rootfs` applied to the tree (mmdebstrap's ``$1``)."""
    # The package's parent goes on PYTHONPATH so the hook finds this very copy of the code.
    package_parent = str(Path(__file__).resolve().parent.parent)
    return " ".join([
        f"PYTHONPATH={shlex.quote(package_parent)}",
        shlex.quote(sys.executable), "-m", "stacks.rootfs", '"$1"',
        shlex.quote(user.name), str(user.uid), str(user.gid),
    ])


def _login_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())
