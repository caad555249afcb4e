"""registries.toml: where it is read from, what it means, and how bad files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.errors import UsageError
from lifecycle.registry.config import Mirror, load_settings, settings_path


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "registries.toml"
    path.write_text(text)
    return load_settings({"HYBRIDLESS_REGISTRIES": str(path)})


def test_location() -> None:
    assert settings_path({"HYBRIDLESS_REGISTRIES": "/x.toml"}) == Path("/x.toml")
    assert settings_path({"XDG_CONFIG_HOME": "/cfg"}) == Path("/cfg/hybridless/registries.toml")


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    settings = load_settings({"HYBRIDLESS_REGISTRIES": str(tmp_path / "none.toml")})
    assert settings.for_host("docker.io").mirrors == ()


def test_every_key(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here")
    settings = _load(tmp_path, """
["docker.io"]
mirrors = ["mirror.example.com/dockerhub", "127.0.0.1:5001"]
["123456789012.dkr.ecr.eu-west-1.amazonaws.com"]
endpoint = "127.0.0.1:5000"
insecure = true
ca-file = "ca.pem"
""")
    hub = settings.for_host("index.docker.io")
    assert hub.mirrors == (Mirror("mirror.example.com", "dockerhub"), Mirror("127.0.0.1:5001"))
    assert hub.mirrors[0].repository("library/node") == "dockerhub/library/node"
    ecr = settings.for_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    assert ecr.endpoint == "127.0.0.1:5000" and ecr.insecure
    assert ecr.ca_file == tmp_path / "ca.pem"
    assert settings.address("123456789012.dkr.ecr.eu-west-1.amazonaws.com") == "127.0.0.1:5000"
    assert settings.plain_http_first("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    assert not settings.plain_http_first("ghcr.io")


@pytest.mark.parametrize(("text", "named"), [
    ('["h.example"]\nmirror = ["x"]', r"\['h.example'\] mirror: unknown key"),
    ('["h.example"]\nmirrors = "x"', r"mirrors: a list"),
    ('["h.example"]\nendpoint = "http://x:5000"', r"endpoint: 'http://x:5000' is not a host"),
    ('["h.example"]\nendpoint = "x:99999"', r"endpoint: 'x:99999' has no valid port"),
    ('["h.example"]\ninsecure = "yes"', r"insecure: true or false"),
    ('["h.example"]\nca-file = "missing.pem"', r"ca-file: .*missing.pem is not a file"),
    ('["h.example"]\nmirrors = ["a/b", "https://c"]', r"mirrors: 'https:' is not a host"),
    ('top = 1', r"\['top'\]: each host is a table"),
    ('["h.example"\n', r"not valid TOML"),
])
def test_bad_files_name_file_and_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(UsageError, match=named) as caught:
        _load(tmp_path, text)
    assert str(tmp_path / "registries.toml") in str(caught.value)
    assert caught.value.exit_code == 2


def test_overrides(tmp_path: Path) -> None:
    settings = _load(tmp_path, "").with_overrides(insecure_hosts=["docker.io"])
    assert settings.for_host("docker.io").insecure
    with pytest.raises(UsageError, match="--ca-bundle"):
        settings.with_overrides(ca_bundle=tmp_path / "none.pem")
