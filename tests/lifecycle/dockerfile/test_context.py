"""The build context: filters in order, additional files last, nothing from outside the app."""

from __future__ import annotations

import io
import logging
import os
import tarfile
from pathlib import Path

import pytest

from lifecycle.descriptor import Descriptor, DockerFileCopy, DockerfileSpec
from lifecycle.dockerfile import context
from lifecycle.errors import BuildError, DockerfileBuildFailed

LOG = logging.getLogger("test")


def make_app(root: Path) -> Path:
    app = root / "app"
    for rel, text in {"Dockerfile": "FROM a\n", "src/index.js": "x", "src/test.js": "t",
                      "docs/a.md": "d", "docs/keep.md": "k", ".env": "SECRET=1",
                      "conf/site.conf": "conf", "conf/sub/b.txt": "b", ".git/HEAD": "h",
                      "README.md": "r"}.items():
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text(text)
    return app


def names(app: Path, spec: DockerfileSpec, desc: Descriptor | None = None,
          excludes: tuple[str, ...] = (".git",)) -> list[str]:
    ctx = context.collect(app, desc or Descriptor(), spec, excludes, LOG)
    data = b"".join(ctx.stream(315532801))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name.rstrip("/") for m in tar.getmembers()]


def test_filters_apply_in_order_and_additional_files_come_last(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / ".dockerignore").write_text("# comment\ndocs\n!docs/keep.md\n*.md\n**/test.js\n"
                                       ".env\nDockerfile\n")
    spec = DockerfileSpec("Dockerfile", (DockerFileCopy("conf/site.conf", "etc/site.conf"),
                                         DockerFileCopy("conf/sub", "src")))
    got = names(app, spec, Descriptor(exclude=("conf/sub",)))
    assert ".env" not in got and "src/test.js" not in got and "README.md" not in got
    assert "docs/keep.md" in got and "docs/a.md" not in got
    assert "Dockerfile" in got  # the engine needs it whatever .dockerignore says
    assert "etc/site.conf" in got and "conf/site.conf" in got
    # a directory placed at "src" replaces the app's src entirely
    assert "src/b.txt" in got and "src/index.js" not in got
    assert not any(n.startswith(".git") for n in got)
    assert got == sorted(got, key=str.encode)


def test_include_rules_and_engine_default_excludes(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    got = names(app, DockerfileSpec("Dockerfile"), Descriptor(include=("src/**",)),
                excludes=(".git", ".env"))
    assert set(got) == {"src", "src/index.js", "src/test.js", "Dockerfile"}


def test_hard_link_to_a_filtered_file_becomes_a_copy(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    os.link(app / "src" / "index.js", app / "src" / "linked.js")
    (app / ".dockerignore").write_text("src/index.js\n")
    ctx = context.collect(app, Descriptor(), DockerfileSpec("Dockerfile"), (), LOG)
    with tarfile.open(fileobj=io.BytesIO(b"".join(ctx.stream(0)))) as tar:
        member = tar.getmember("src/linked.js")
        assert member.isfile() and tar.extractfile(member).read() == b"x"  # type: ignore[union-attr]


@pytest.mark.parametrize("rel", ["link-out", "inner/../../outside", "via-dir/secret"])
def test_additional_files_leaving_the_app_are_refused(tmp_path: Path, rel: str) -> None:
    app = make_app(tmp_path)
    (tmp_path / "outside").write_text("no")
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir" / "secret").write_text("no")
    (app / "link-out").symlink_to(tmp_path / "outside")
    (app / "inner").mkdir()
    (app / "via-dir").symlink_to(tmp_path / "outdir")
    spec = DockerfileSpec("Dockerfile", (DockerFileCopy(rel, "x"),))
    with pytest.raises(DockerfileBuildFailed, match="leads outside the app directory"):
        context.collect(app, Descriptor(exclude=("link-out", "via-dir")), spec, (), LOG)


def test_app_symlink_escape_and_missing_files_are_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with pytest.raises(DockerfileBuildFailed, match="failed to find the Dockerfile 'Nope'"):
        context.collect(app, Descriptor(), DockerfileSpec("Nope"), (), LOG)
    spec = DockerfileSpec("Dockerfile", (DockerFileCopy("missing.txt", "x"),))
    with pytest.raises(DockerfileBuildFailed, match=r"additional-docker-files\[0\]\.from"):
        context.collect(app, Descriptor(), spec, (), LOG)
    (app / "escape").symlink_to("/etc/passwd")
    with pytest.raises(BuildError, match="points outside"):
        context.collect(app, Descriptor(), DockerfileSpec("Dockerfile"), (), LOG)


@pytest.mark.parametrize(("pattern", "path", "excluded"), [
    ("*.md", "README.md", True), ("*.md", "docs/a.md", False), ("**/*.md", "docs/a.md", True),
    ("/node_modules", "node_modules/x/y", True), ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True), ("f?o", "foo", True), ("[a-c]x", "bx", True),
    ("[!a]x", "ax", False), ("./build/", "build/out", True),
])
def test_dockerignore_matches_like_docker(tmp_path: Path, pattern: str, path: str,
                                          excluded: bool) -> None:
    (tmp_path / ".dockerignore").write_text(pattern + "\n")
    assert context.Dockerignore.read(tmp_path / ".dockerignore").excludes(path) is excluded


def test_the_engines_secrets_list_keeps_credentials_out(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / ".npmrc").write_text("//registry.npmjs.org/:_authToken=secret\n")
    (app / "project.toml").write_text("[_]\n")
    (app / "src" / ".env.production").write_text("TOKEN=1\n")
    got = names(app, DockerfileSpec("Dockerfile"))
    assert not {".env", ".npmrc", "project.toml", "src/.env.production"} & set(got)
    assert "src/index.js" in got
