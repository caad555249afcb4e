"""Tests for lifecycle.image.tree: selection rules, order, hardlinks, symlink confinement, modes."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from lifecycle import exclusions
from lifecycle.errors import BuildError
from lifecycle.image import tree
from lifecycle.image.tree import Entry, parents, scan


def make(root: Path, *paths: str) -> Path:
    """Create files (and directories, for names ending in "/") under ``root``."""
    for path in paths:
        target = root / path
        if path.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"content of {path}\n")
    return root


def names(entries: list[Entry], prefix: str = "var/task/") -> list[str]:
    """Entry names under ``prefix``, with the prefix cut off."""
    return [e.name.removeprefix(prefix) for e in entries if e.name.startswith(prefix)]


def by_name(entries: list[Entry]) -> dict[str, Entry]:
    """Entries keyed by name."""
    return {e.name: e for e in entries}


# --- order, parents, .git ---------------------------------------------------------------------


def test_parents_lists_every_ancestor_as_a_0755_directory() -> None:
    assert parents("layers/hybridless_nodejs/deps") == [
        Entry("layers", "dir", 0o755),
        Entry("layers/hybridless_nodejs", "dir", 0o755),
        Entry("layers/hybridless_nodejs/deps", "dir", 0o755),
    ]
    assert parents("") == []
    assert parents("/var/task/") == parents("var/task")


@pytest.mark.parametrize("prefix", ["var/../etc", "var//task", "./var"])
def test_a_prefix_that_is_not_a_plain_relative_path_is_refused(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(BuildError, match="not a plain relative path"):
        scan(tmp_path, prefix=prefix)


def test_entries_are_sorted_by_utf8_bytes_and_start_with_the_prefix_parents(tmp_path: Path) -> None:
    make(tmp_path, "b.txt", "a-b", "a/b", "A", "é.txt", "z/", "\U0001f600", "\uff21")
    entries = scan(tmp_path, prefix="var/task")
    assert [e.name for e in entries[:2]] == ["var", "var/task"]
    assert [e.mode for e in entries[:2]] == [0o755, 0o755]
    listed = [e.name for e in entries]
    assert listed == sorted(listed, key=lambda n: n.encode("utf-8"))
    # "-" sorts before "/", so a directory's children need not follow it immediately.
    assert names(entries) == ["A", "a", "a-b", "a/b", "b.txt", "z", "é.txt", "\uff21", "\U0001f600"]


def test_scanning_twice_gives_the_same_entries(tmp_path: Path) -> None:
    make(tmp_path, *(f"d{i % 7}/f{i}" for i in range(200)))
    assert scan(tmp_path, prefix="var/task") == scan(tmp_path, prefix="var/task")


def test_the_root_prefix_directories_are_0755_whatever_the_host_mode(tmp_path: Path) -> None:
    root = make(tmp_path / "app", "f")
    root.chmod(0o700)
    assert by_name(scan(root, prefix="var/task"))["var/task"].mode == 0o755


def test_an_empty_prefix_puts_the_tree_at_the_image_root(tmp_path: Path) -> None:
    make(tmp_path, "etc/hosts")
    assert [e.name for e in scan(tmp_path, prefix="")] == ["etc", "etc/hosts"]


def test_git_is_ignored_at_any_depth_as_a_directory_or_a_file(tmp_path: Path) -> None:
    make(tmp_path, ".git/config", "sub/.git/HEAD", "mod/.git", "mod/x.js", ".gitignore")
    assert names(scan(tmp_path, prefix="var/task")) == [".gitignore", "mod", "mod/x.js", "sub"]


def test_a_missing_root_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not a directory"):
        scan(tmp_path / "absent", prefix="var/task")


def test_a_name_that_is_not_utf8_is_refused_by_name(tmp_path: Path) -> None:
    os.close(os.open(os.fsencode(tmp_path) + b"/bad\xff.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    with pytest.raises(BuildError, match="is not valid UTF-8") as caught:
        scan(tmp_path, prefix="var/task")
    assert "bad" in str(caught.value)


# --- include and exclude ----------------------------------------------------------------------

TREE = (
    "package.json",
    "package-lock.json",
    "README.md",
    "src/handler.js",
    "src/lib/util.js",
    "src/lib/util.test.js",
    "src/build/out.js",
    "tests/handler.test.js",
    "tests/fixtures/event.json",
    "build",
    "docs/build/index.html",
    "empty/",
    "a/b/c/d.txt",
)


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        (
            ["src/**", "package*.json"],
            [],
            [
                "package-lock.json",
                "package.json",
                "src",
                "src/build",
                "src/build/out.js",
                "src/handler.js",
                "src/lib",
                "src/lib/util.js",
                "src/lib/util.test.js",
            ],
        ),
        (
            [],
            ["tests/**", "*.md", "empty", "a", "build", "src/lib/*.test.js", "docs/"],
            [
                "package-lock.json",
                "package.json",
                "src",
                "src/handler.js",
                "src/lib",
                "src/lib/util.js",
            ],
        ),
        # Without a slash a pattern matches a basename at any depth; "build/" only directories.
        (
            ["build/"],
            [],
            ["docs", "docs/build", "docs/build/index.html", "src", "src/build", "src/build/out.js"],
        ),
        (["/build"], [], ["build"]),
        (["**/lib/*.js"], ["**/*.test.js"], ["src", "src/lib", "src/lib/util.js"]),
        (["a/**/d.txt"], [], ["a", "a/b", "a/b/c", "a/b/c/d.txt"]),
        (["src/*.js"], [], ["src", "src/handler.js"]),
        (["?EADME.[mM]d"], [], ["README.md"]),
        (["src/[!h]*"], ["*.js"], ["src", "src/build", "src/lib"]),
        (["src"], ["src/lib/"], ["src", "src/build", "src/build/out.js", "src/handler.js"]),
        (["empty"], [], ["empty"]),
    ],
)
def test_include_and_exclude_follow_the_documented_glob_rules(
    tmp_path: Path, include: list[str], exclude: list[str], expected: list[str]
) -> None:
    make(tmp_path, *TREE)
    entries = scan(tmp_path, prefix="var/task", include=include, exclude=exclude)
    assert names(entries) == sorted(expected, key=lambda n: n.encode())


def test_star_never_crosses_a_directory_boundary(tmp_path: Path) -> None:
    make(tmp_path, *TREE)
    assert names(scan(tmp_path, prefix="var/task", include=["src*js"])) == []
    assert names(scan(tmp_path, prefix="var/task", include=["src/?andler.js"])) == [
        "src",
        "src/handler.js",
    ]


def test_an_excluded_directory_takes_its_subtree_with_it(tmp_path: Path) -> None:
    make(tmp_path, *TREE)
    entries = scan(tmp_path, prefix="var/task", include=["**/*.js"], exclude=["src"])
    assert names(entries) == ["tests", "tests/handler.test.js"]


def test_negated_patterns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="negation is not supported"):
        scan(tmp_path, prefix="var/task", exclude=["!keep.js"])


# --- kinds, hardlinks, special files ----------------------------------------------------------


def test_files_directories_and_symlinks_carry_their_attributes(tmp_path: Path) -> None:
    make(tmp_path, "bin/run", "empty/")
    (tmp_path / "bin/run").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "bin/run").chmod(0o750)
    (tmp_path / "current").symlink_to("bin")
    got = by_name(scan(tmp_path, prefix="app"))
    assert got["app/bin/run"] == Entry(
        "app/bin/run", "file", 0o750, 10, source=str(tmp_path / "bin/run")
    )
    assert got["app/empty"] == Entry(
        "app/empty", "dir", (tmp_path / "empty").stat().st_mode & 0o7777
    )
    # A directory symlink is stored as a link, never followed.
    assert got["app/current"].kind == "symlink"
    assert got["app/current"].target == "bin"
    assert "app/current/run" not in got


def test_hardlinks_become_one_file_and_links_to_the_first_name(tmp_path: Path) -> None:
    make(tmp_path, "m/original", "lonely")
    os.link(tmp_path / "m/original", tmp_path / "b-second")
    os.link(tmp_path / "m/original", tmp_path / "z-third")
    got = by_name(scan(tmp_path, prefix="t"))
    assert got["t/b-second"].kind == "file"
    assert got["t/b-second"].size == len("content of m/original\n")
    assert got["t/m/original"] == Entry(
        "t/m/original", "hardlink", got["t/b-second"].mode, target="t/b-second"
    )
    assert got["t/z-third"].target == "t/b-second"
    assert got["t/lonely"].kind == "file"


def test_a_hardlinked_file_left_out_by_exclude_does_not_anchor_the_others(tmp_path: Path) -> None:
    make(tmp_path, "a-first")
    os.link(tmp_path / "a-first", tmp_path / "b-kept")
    os.link(tmp_path / "a-first", tmp_path / "c-kept")
    got = by_name(scan(tmp_path, prefix="t", exclude=["a-first"]))
    assert got["t/b-kept"].kind == "file"
    assert got["t/c-kept"] == Entry("t/c-kept", "hardlink", got["t/b-kept"].mode, target="t/b-kept")


def test_sockets_and_fifos_are_skipped_and_reported(tmp_path: Path) -> None:
    make(tmp_path, "keep")
    os.mkfifo(tmp_path / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    warnings: list[str] = []
    try:
        entries = scan(tmp_path, prefix="t", warn=warnings.append)
    finally:
        server.close()
    assert names(entries, "t/") == ["keep"]
    assert sorted(warnings) == [
        "skipped pipe: a FIFO cannot go into a layer",
        "skipped sock: a socket cannot go into a layer",
    ]


# --- symlink confinement ----------------------------------------------------------------------


def escape_case(root: Path, case: str) -> str:
    """Build one escaping layout under ``root``; return the path that must be named."""
    make(root, "sub/deep/file", "outside-marker")
    if case == "absolute":
        (root / "sub/abs").symlink_to("/etc/passwd")
        return "sub/abs"
    if case == "dotdot":
        (root / "sub/up2").symlink_to("../../secret")
        return "sub/up2"
    if case == "dotdot-after-descending":
        (root / "sneaky").symlink_to("sub/deep/../../..")
        return "sneaky"
    if case == "through-symlinked-dir":
        # Each link alone stays inside; together they climb out, as the kernel resolves them.
        (root / "sub/up").symlink_to("..")
        (root / "x").symlink_to("sub/up/..")
        return "x"
    if case == "chain":
        (root / "sub/up").symlink_to("..")
        (root / "c2").symlink_to("sub/up")
        (root / "c1").symlink_to("c2")
        (root / "d/e").mkdir(parents=True)
        (root / "d/e/leak").symlink_to("../../c1/../etc")
        return "d/e/leak"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["absolute", "dotdot", "dotdot-after-descending", "through-symlinked-dir", "chain"],
)
def test_symlinks_that_leave_the_app_are_refused_by_name(tmp_path: Path, case: str) -> None:
    root = tmp_path / "app"
    offender = escape_case(root, case)
    with pytest.raises(BuildError) as caught:
        scan(root, prefix="var/task")
    message = str(caught.value)
    assert f"symlink {offender} points outside" in message
    assert f"{offender} -> {os.readlink(root / offender)}" in message
    assert "hint:" in message
    assert caught.value.exit_code == 51


def test_the_error_names_the_hop_that_leaves_when_it_is_another_link(tmp_path: Path) -> None:
    root = make(tmp_path / "app", "sub/f")
    (root / "sub/up").symlink_to("..")
    (root / "x").symlink_to("sub/up/../outside")
    with pytest.raises(BuildError, match=r"x -> sub/up/\.\./outside, via sub/up -> \.\."):
        scan(root, prefix="var/task")


def test_a_link_through_a_symlinked_dir_that_stays_inside_is_kept(tmp_path: Path) -> None:
    root = make(tmp_path / "app", "sub/deep/file", "top.txt")
    (root / "deeplink").symlink_to("sub/deep")
    # Lexically "deeplink/../../top.txt" climbs out; resolved like the kernel does, it is inside.
    (root / "back").symlink_to("deeplink/../../top.txt")
    got = by_name(scan(root, prefix="var/task"))
    assert got["var/task/back"].target == "deeplink/../../top.txt"


def test_symlinks_inside_the_app_are_kept_verbatim(tmp_path: Path) -> None:
    root = make(tmp_path / "app", "sub/file", "lib/x.js")
    links = {
        "rel": "sub/file",
        "sub/parent": "../lib/x.js",
        "dirlink": "sub",
        "dot": "./sub/./file",
        "dangling": "sub/not-there",
        "self-loop": "self-loop",
    }
    for name, target in links.items():
        (root / name).symlink_to(target)
    got = by_name(scan(root, prefix="var/task"))
    for name, target in links.items():
        assert got[f"var/task/{name}"] == Entry(f"var/task/{name}", "symlink", 0o777, target=target)


def test_confine_off_keeps_absolute_and_escaping_links(tmp_path: Path) -> None:
    root = make(tmp_path / "venv", "bin/activate")
    (root / "bin/python").symlink_to("/usr/bin/python3")
    (root / "up").symlink_to("../../elsewhere")
    got = by_name(scan(root, prefix="layers/x/venv", confine=False))
    assert got["layers/x/venv/bin/python"].target == "/usr/bin/python3"
    assert got["layers/x/venv/up"].target == "../../elsewhere"


def test_an_excluded_escaping_link_is_not_an_error(tmp_path: Path) -> None:
    root = make(tmp_path / "app", "index.js")
    (root / "escape").symlink_to("/etc")
    assert names(scan(root, prefix="var/task", exclude=["escape"])) == ["index.js"]


# --- modes ------------------------------------------------------------------------------------

MODES = [
    # (kind, host mode, kept as is, with app_modes)
    ("file", 0o600, 0o600, 0o644),
    ("file", 0o666, 0o666, 0o644),
    ("file", 0o700, 0o700, 0o755),
    ("file", 0o755, 0o755, 0o755),
    ("file", 0o4755, 0o4755, 0o4755),
    ("file", 0o2710, 0o2710, 0o2755),
    ("file", 0o000, 0o000, 0o444),
    ("dir", 0o700, 0o700, 0o755),
    ("dir", 0o777, 0o777, 0o755),
    ("dir", 0o1777, 0o1777, 0o1755),
    ("dir", 0o2770, 0o2770, 0o2755),
]


@pytest.mark.parametrize(("kind", "host", "plain", "app"), MODES)
def test_modes_are_kept_or_made_safe_for_a_non_root_user(
    tmp_path: Path, kind: str, host: int, plain: int, app: int
) -> None:
    path = tmp_path / "thing"
    if kind == "dir":
        path.mkdir()
    else:
        path.write_text("x")
    os.chmod(path, host)
    assert stat.S_IMODE(path.stat().st_mode) == host
    assert by_name(scan(tmp_path, prefix="t"))["t/thing"].mode == plain
    assert by_name(scan(tmp_path, prefix="t", app_modes=True))["t/thing"].mode == app


def test_app_modes_leave_symlinks_alone(tmp_path: Path) -> None:
    (tmp_path / "l").symlink_to("nowhere")
    assert by_name(scan(tmp_path, prefix="t", app_modes=True))["t/l"].mode == 0o777


# --- scale ------------------------------------------------------------------------------------


def test_ten_thousand_files_scan_quickly(tmp_path: Path) -> None:
    for d in range(100):
        folder = tmp_path / f"pkg{d}"
        folder.mkdir()
        for f in range(100):
            (folder / f"m{f}.js").touch()
    import time

    started = time.perf_counter()
    entries = scan(tmp_path, prefix="var/task", exclude=["*.md", "test/"], app_modes=True)
    elapsed = time.perf_counter() - started
    assert len(entries) == 2 + 100 + 10_000
    assert elapsed < 2.0, f"scanning 10k files took {elapsed:.2f}s"


def _names(entries: list[tree.Entry]) -> set[str]:
    return {e.name for e in entries}


def test_the_secrets_list_drops_paths_and_names_each_once_in_order(tmp_path: Path) -> None:
    for name in (".env", "src/.env.local", "src/app.js", ".aws/credentials", ".aws/config",
                 "keys/id_rsa", "project.toml", "sub/project.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    seen: list[str] = []
    entries = tree.scan(tmp_path, prefix="", secrets=exclusions.patterns(tmp_path, None),
                        on_secret=seen.append)
    assert _names(entries) == {"src", "src/app.js", "keys", "sub", "sub/project.toml"}
    assert seen == [".aws/", ".env", "keys/id_rsa", "project.toml", "src/.env.local"]


def test_only_an_explicit_include_overrides_the_secrets_list(tmp_path: Path) -> None:
    for name in (".env", ".npmrc", "src/.env", "src/a.js"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    secrets = (".env", ".npmrc")
    seen: list[str] = []
    blanket = tree.scan(tmp_path, prefix="", include=["**", "src/**", "*"], secrets=secrets,
                        on_secret=seen.append)
    assert _names(blanket) == {"src", "src/a.js"} and seen == [".env", ".npmrc", "src/.env"]
    seen.clear()
    named = tree.scan(tmp_path, prefix="", include=["**", "/.env"], secrets=secrets,
                      on_secret=seen.append)
    assert _names(named) == {".env", "src", "src/a.js"} and seen == [".npmrc", "src/.env"]
    # Not included at all: not shipped, so not announced either.
    seen.clear()
    assert _names(tree.scan(tmp_path, prefix="", include=["src/a.js"], secrets=secrets,
                            on_secret=seen.append)) == {"src", "src/a.js"}
    assert seen == []


def test_a_descriptor_inside_the_app_is_on_the_list_wherever_it_is(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "my[1].toml").write_text("x")
    patterns = exclusions.patterns(tmp_path, tmp_path / "conf" / "my[1].toml")
    assert _names(tree.scan(tmp_path, prefix="", secrets=patterns)) == {"conf"}
    assert exclusions.patterns(tmp_path, tmp_path.parent / "elsewhere.toml")[-1] == \
        "/project.toml"


def test_an_undecodable_name_is_fine_inside_an_excluded_path(tmp_path: Path) -> None:
    odd = os.fsencode(tmp_path) + b"/.ssh/\xff"
    os.makedirs(odd)
    seen: list[str] = []
    assert _names(tree.scan(tmp_path, prefix="", secrets=[".ssh/"],
                            on_secret=seen.append)) == set()
    assert seen == [".ssh/"]
    os.makedirs(os.fsencode(tmp_path) + b"/ignored/\xff")
    assert _names(tree.scan(tmp_path, prefix="", exclude=["ignored"], secrets=[".ssh/"])) == set()
    with pytest.raises(BuildError, match="not valid UTF-8"):
        tree.scan(tmp_path, prefix="", secrets=[])


def test_a_bad_character_range_is_a_build_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"pattern '\[z-a\]\.js'"):
        tree.scan(tmp_path, prefix="", include=["[z-a].js"])
    assert tree.pattern_problem("[z-a].js") is not None
    assert tree.pattern_problem("!x") == "negation is not supported"
    assert tree.pattern_problem("src/**/*.js") is None
