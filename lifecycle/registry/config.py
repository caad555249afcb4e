"""``registries.toml``: per-host mirrors, endpoint, insecure and CA file (CONTRACT §5).

The file is validated as it is read: an unknown key or a value of the wrong type is an
error naming the file, the host table and the key, so a typo never silently does nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import NoReturn

from lifecycle.errors import UsageError
from lifecycle.registry.names import canonical_host, is_loopback, split_host_port

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_KEYS = ("mirrors", "endpoint", "insecure", "ca-file")


@dataclass(frozen=True)
class Mirror:
    """A pull-through copy of a registry: ``host``, and a path ``prefix`` put before repos."""

    host: str
    prefix: str = ""

    def repository(self, repository: str) -> str:
        """The repository path on the mirror for ``repository`` upstream."""
        return f"{self.prefix}/{repository}" if self.prefix else repository

    def __str__(self) -> str:
        return f"{self.host}/{self.prefix}" if self.prefix else self.host


@dataclass(frozen=True)
class HostSettings:
    """How to reach one registry host."""

    mirrors: tuple[Mirror, ...] = ()
    endpoint: str | None = None
    insecure: bool = False
    ca_file: Path | None = None


@dataclass(frozen=True)
class RegistrySettings:
    """Every host's settings, plus a CA bundle trusted for every host (``--ca-bundle``)."""

    hosts: Mapping[str, HostSettings] = field(default_factory=lambda: MappingProxyType({}))
    ca_bundle: Path | None = None
    source: Path | None = None

    def for_host(self, host: str) -> HostSettings:
        """The settings of ``host`` (defaults when it has no table)."""
        return self.hosts.get(canonical_host(host), HostSettings())

    def with_overrides(
        self, *, insecure_hosts: Iterable[str] = (), ca_bundle: Path | None = None
    ) -> RegistrySettings:
        """These settings with ``--insecure-registry`` hosts and ``--ca-bundle`` applied."""
        hosts = dict(self.hosts)
        for host in insecure_hosts:
            key = canonical_host(host)
            hosts[key] = replace(hosts.get(key, HostSettings()), insecure=True)
        if ca_bundle is not None and not ca_bundle.is_file():
            raise UsageError(
                f"failed to use --ca-bundle {str(ca_bundle)!r}: no such file",
                hint="give a PEM file of CA certificates",
            )
        return replace(
            self, hosts=MappingProxyType(hosts), ca_bundle=ca_bundle or self.ca_bundle
        )

    def address(self, host: str) -> str:
        """Where ``host``'s traffic goes: its ``endpoint`` when set, else itself."""
        return self.for_host(host).endpoint or host

    def plain_http_first(self, host: str) -> bool:
        """Whether ``host`` may be spoken to in plain HTTP: loopback or marked insecure."""
        settings = self.for_host(host)
        return settings.insecure or is_loopback(self.address(host))


def settings_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$HYBRIDLESS_REGISTRIES``, else ``$XDG_CONFIG_HOME/hybridless/registries.toml``."""
    env = os.environ if environ is None else environ
    if env.get("HYBRIDLESS_REGISTRIES"):
        return Path(env["HYBRIDLESS_REGISTRIES"])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hybridless" / "registries.toml"


def load_settings(environ: Mapping[str, str] | None = None) -> RegistrySettings:
    """Read and validate the registries file; no file means every host's defaults."""
    path = settings_path(environ)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RegistrySettings()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"failed to read registries file {path}: {error}") from error
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(
            f"failed to read registries file {path}: not valid TOML ({error})",
            hint='write one table per host, e.g. ["docker.io"] mirrors = ["mirror.example"]',
        ) from error
    hosts: dict[str, HostSettings] = {}
    for host, table in document.items():
        if not isinstance(table, dict):
            _invalid(path, host, None, 'each host is a table, e.g. ["registry.example.com"]')
        _check_host(path, host, None, host)
        hosts[canonical_host(host)] = _host_settings(path, host, table)
    return RegistrySettings(hosts=MappingProxyType(hosts), source=path)


def _host_settings(path: Path, host: str, table: Mapping[str, object]) -> HostSettings:
    for key in table:
        if key not in _KEYS:
            _invalid(path, host, key, f"unknown key; the keys are {', '.join(_KEYS)}")
    mirrors = table.get("mirrors", [])
    if not isinstance(mirrors, list) or not all(isinstance(m, str) for m in mirrors):
        _invalid(path, host, "mirrors", 'a list of "host[/prefix]" strings')
    endpoint = table.get("endpoint")
    if endpoint is not None:
        if not isinstance(endpoint, str):
            _invalid(path, host, "endpoint", 'a "host:port" string')
        _check_host(path, host, "endpoint", endpoint)
    insecure = table.get("insecure", False)
    if not isinstance(insecure, bool):
        _invalid(path, host, "insecure", "true or false")
    ca_file = table.get("ca-file")
    ca_path: Path | None = None
    if ca_file is not None:
        if not isinstance(ca_file, str) or not ca_file:
            _invalid(path, host, "ca-file", "the path of a PEM file")
        ca_path = Path(ca_file).expanduser()
        if not ca_path.is_absolute():
            ca_path = path.parent / ca_path
        if not ca_path.is_file():
            _invalid(path, host, "ca-file", f"{ca_path} is not a file")
    return HostSettings(
        mirrors=tuple(_mirror(path, host, text) for text in mirrors),
        endpoint=endpoint,
        insecure=insecure,
        ca_file=ca_path,
    )


def _mirror(path: Path, host: str, text: str) -> Mirror:
    mirror_host, _, prefix = text.strip("/").partition("/")
    _check_host(path, host, "mirrors", mirror_host)
    return Mirror(canonical_host(mirror_host), prefix)


def _check_host(path: Path, host: str, key: str | None, value: str) -> None:
    name, port = split_host_port(value)
    if not name or "/" in value or "://" in value or (":" in name and not value.startswith("[")):
        _invalid(path, host, key, f"{value!r} is not a host[:port] (no scheme, no path)")
    if port is not None and not 0 < port < 65536:
        _invalid(path, host, key, f"{value!r} has no valid port")


def _invalid(path: Path, host: str, key: str | None, why: str) -> NoReturn:
    where = f"[{host!r}]" + (f" {key}" if key else "")
    raise UsageError(
        f"failed to read registries file {path}: {where}: {why}",
        hint="see the registries.toml section of the README",
    )
