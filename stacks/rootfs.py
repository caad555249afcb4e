"""What every recipe image's root filesystem gets after its packages: the stack's user.

mmdebstrap runs this as a customize hook (``python -m stacks.rootfs ROOTFS NAME UID GID``), so
it imports nothing outside the standard library. The files are written by hand rather than by
``useradd``: useradd stamps today's date into ``/etc/shadow``, which would make two builds of
the same packages differ.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def add_user(rootfs: Path, name: str, uid: int, gid: int) -> None:
    """Give ``rootfs`` a user and group ``name`` (``uid``/``gid``) with a home and no password."""
    etc = rootfs / "etc"
    etc.mkdir(mode=0o755, exist_ok=True)
    home = f"/home/{name}"
    _replace_line(etc / "passwd", name, f"{name}:x:{uid}:{gid}::{home}:/bin/sh",
                  "root:x:0:0:root:/root:/bin/sh")
    _replace_line(etc / "group", name, f"{name}:x:{gid}:", "root:x:0:")
    # A locked password and no change date: the user exists for processes and file owners,
    # never for logins, and a date would differ between two builds.
    for shadow, line in (("shadow", f"{name}:!::0:99999:7:::"), ("gshadow", f"{name}:!::")):
        if (etc / shadow).exists():
            _replace_line(etc / shadow, name, line, None)
    home_dir = rootfs / home.lstrip("/")
    home_dir.mkdir(parents=True, exist_ok=True)
    home_dir.chmod(0o755)
    if os.geteuid() == 0:  # root, or root inside mmdebstrap's user namespace
        os.chown(home_dir, uid, gid)


def finish(rootfs: Path, name: str, uid: int, gid: int) -> None:
    """Apply the shared setup: the user, a sticky world-writable /tmp, no /var/task.

    ``/var/task`` is left to the app layer, which creates it owned as the app needs.
    """
    add_user(rootfs, name, uid, gid)
    tmp = rootfs / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)  # after mkdir: the umask would strip the sticky and write bits
    task = rootfs / "var" / "task"
    if task.exists():
        shutil.rmtree(task)


def _replace_line(path: Path, name: str, line: str, first: str | None) -> None:
    """Put ``line`` in place of ``name``'s entry in a colon file (``first`` seeds a new file)."""
    if path.exists():
        lines = path.read_text().splitlines()
    else:
        lines = [first] if first else []
    kept = [existing for existing in lines if existing.split(":", 1)[0] != name]
    path.write_text("\n".join([*kept, line]) + "\n")


def main(argv: list[str]) -> int:
    """The hook's entry: ``ROOTFS NAME UID GID``."""
    if len(argv) != 4:
        print("usage: python -m stacks.rootfs ROOTFS NAME UID GID", file=sys.stderr)
        return 2
    rootfs, name, uid, gid = argv
    finish(Path(rootfs), name, int(uid), int(gid))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
