"""--secret parsing and staging: hostile specs, hostile sources, nothing left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lifecycle import secrets
from lifecycle.errors import UsageError


def test_file_and_variable_forms_parse() -> None:
    assert secrets.parse("id=npmrc,src=/x/.npmrc") == secrets.SecretSpec("npmrc",
                                                                        file=Path("/x/.npmrc"))
    assert secrets.parse("id=pip.conf,source=p.conf").file == Path("p.conf")
    assert secrets.parse("env=TOKEN,id=netrc") == secrets.SecretSpec("netrc", variable="TOKEN")


@pytest.mark.parametrize("text", [
    "", "id=", "id=npmrc", "src=/x", "id=npmrc,src=/x,env=Y", "id=../escape,src=/x",
    "id=a/b,src=/x", "id=.hidden,src=/x", "id=-flag,src=/x", "id=npmrc,src=/x,src=/y",
    "id=npmrc,env=1BAD", "id=npmrc,env=A-B", "id=npmrc,mode=0600,src=/x", "id=x\0y,src=/x",
    "id=" + "a" * 200 + ",src=/x", "id=npmrc;rm -rf /,src=/x",
])
def test_hostile_specs_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        secrets.parse(text)
    assert caught.value.exit_code == 2
    assert "--secret" in str(caught.value)


def test_an_id_given_twice_is_refused() -> None:
    with pytest.raises(UsageError, match="id=npmrc is given twice"):
        secrets.parse_all(["id=npmrc,src=/a", "id=npmrc,env=B"])


def test_staged_files_are_private_and_removed(tmp_path: Path) -> None:
    source = tmp_path / "npmrc"
    source.write_text("//registry/:_authToken=s3cret\n")
    specs = secrets.parse_all([f"id=npmrc,src={source}", "id=netrc,env=MY_NETRC"])
    with secrets.staged(specs, {"MY_NETRC": "machine x password y"}) as files:
        directory = secrets.directory_of(files)
        assert directory is not None
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert files["npmrc"].read_text() == source.read_text()
        assert files["netrc"].read_text() == "machine x password y"
        assert {stat.S_IMODE(p.stat().st_mode) for p in files.values()} == {0o600}
    assert not directory.exists()


def test_staging_is_removed_when_the_build_fails(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("x")
    with pytest.raises(RuntimeError), secrets.staged(secrets.parse_all(
            [f"id=s,src={tmp_path / 's'}"])) as files:
        directory = secrets.directory_of(files)
        raise RuntimeError("the build failed")
    assert directory is not None and not directory.exists()


def test_no_secrets_stage_nothing() -> None:
    with secrets.staged(()) as files:
        assert files == {} and secrets.directory_of(files) is None


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "huge", "unset"])
def test_hostile_sources_are_usage_errors(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "source"
    if kind == "directory":
        source.mkdir()
    elif kind == "fifo":
        os.mkfifo(source)
    elif kind == "huge":
        source.write_bytes(b"x" * (secrets.MAX_BYTES + 1))
    text = "id=s,env=NOT_SET_ANYWHERE" if kind == "unset" else f"id=s,src={source}"
    with pytest.raises(UsageError) as caught, secrets.staged(secrets.parse_all([text]), {}):
        pass
    assert "--secret id=s" in str(caught.value)
