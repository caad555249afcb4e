"""The source revision of the build label: git metadata inside the app only, or nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lifecycle.revision import git_revision

OID = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / ".git" / "refs" / "heads").mkdir(parents=True)
    return root


def test_reads_head_through_a_loose_ref_and_packed_refs(app: Path) -> None:
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (app / ".git" / "refs" / "heads" / "main").write_text(OID + "\n")
    assert git_revision(app) == OID
    (app / ".git" / "refs" / "heads" / "main").unlink()
    (app / ".git" / "packed-refs").write_text(f"# pack-refs\n{OID} refs/heads/main\n")
    assert git_revision(app) == OID


def test_a_real_repository(tmp_path: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True, env=env)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env=env)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert git_revision(tmp_path) == head


@pytest.mark.parametrize("head", [
    "ref: ../../../../../../../{secret}",   # a ref that climbs out of .git
    "ref: {secret}",                        # an absolute ref
    "ref: refs/../../../{secret}",
])
def test_a_ref_outside_the_git_directory_is_not_read(app: Path, tmp_path: Path,
                                                     head: str) -> None:
    secret = tmp_path / "secret"
    secret.write_text(OID)  # even a file that looks like an id must not be taken
    (app / ".git" / "HEAD").write_text(head.format(secret=str(secret).lstrip("/")
                                                   if "refs/" in head or ".." in head
                                                   else secret))
    assert git_revision(app) is None


def test_file_content_that_is_not_an_object_id_never_becomes_the_revision(app: Path) -> None:
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (app / ".git" / "refs" / "heads" / "main").write_text("AWS_SECRET=hunter2\n")
    assert git_revision(app) is None
    (app / ".git" / "HEAD").write_text("password\n")
    assert git_revision(app) is None


def test_links_fifos_and_bad_bytes_give_no_revision(app: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "refs" / "heads").mkdir(parents=True)
    (outside / "HEAD").write_text(OID)
    (app / ".git" / "HEAD").symlink_to(outside / "HEAD")
    assert git_revision(app) is None
    (app / ".git" / "HEAD").unlink()
    os.mkfifo(app / ".git" / "HEAD")
    assert git_revision(app) is None  # returns at once: a FIFO is never opened for reading
    (app / ".git" / "HEAD").unlink()
    (app / ".git" / "HEAD").write_bytes(b"ref: refs/heads/\xff\n")
    assert git_revision(app) is None
    (app / ".git" / "HEAD").write_bytes(b"x" * 100_000)
    assert git_revision(app) is None


def test_git_files_and_links_pointing_outside_the_app_are_ignored(app: Path,
                                                                 tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "HEAD").write_text(OID)
    shutil.rmtree(app / ".git")
    (app / ".git").symlink_to(outside)
    assert git_revision(app) is None
    (app / ".git").unlink()
    (app / ".git").write_text(f"gitdir: {outside}\n")
    assert git_revision(app) is None
    (app / ".git").write_text("gitdir: ../elsewhere\n")
    assert git_revision(app) is None
    # Inside the app, a gitdir file is followed.
    (app / ".git").unlink()
    (app / "modules" / "x").mkdir(parents=True)
    (app / "modules" / "x" / "HEAD").write_text(OID + "\n")
    (app / ".git").write_text("gitdir: modules/x\n")
    assert git_revision(app) == OID
