"""The npm registry, read the way npm reads it: its URL from npm's configuration, TLS through
the host's CA bundle, the proxy from the build environment, downloads checked against
``dist.integrity`` before anyone reads them.

Only what the Node.js layer needs: a package's abbreviated packument (versions with their
``dist`` and ``engines``) and one tarball.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.errors import BuildpackFailed

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
# The abbreviated form holds dist and engines and is a tenth of the size of the full document.
ABBREVIATED = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8"
TIMEOUT = 60.0
CHUNK = 1 << 20


@dataclass(frozen=True)
class Dist:
    """Where one published version's tarball is and what its bytes must hash to."""

    tarball: str
    integrity: str


@dataclass(frozen=True)
class Published:
    """One published version of a package."""

    version: str
    dist: Dist
    engines_node: str | None = None


@dataclass(frozen=True)
class Registry:
    """One npm registry and how to reach it from this build."""

    url: str
    env: Mapping[str, str]

    def packument(self, name: str) -> dict[str, Published]:
        """The package's published versions by version string."""
        url = urllib.parse.urljoin(self.url, urllib.parse.quote(name, safe="@"))
        try:
            with self._open(url, accept=ABBREVIATED) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise BuildpackFailed(f"failed to find package {name} on the npm registry "
                                      f"{self.url} (404)",
                                      hint="check the registry in your npm configuration "
                                           "(`npm config get registry`)") from exc
            raise self._failed(f"read package {name}", url, exc) from exc
        except (OSError, ValueError) as exc:
            raise self._failed(f"read package {name}", url, exc) from exc
        versions = document.get("versions") if isinstance(document, Mapping) else None
        if not isinstance(versions, Mapping):
            raise BuildpackFailed(f"failed to read package {name} from {url}: the answer has "
                                  "no 'versions' object")
        return {version: parsed for version, meta in versions.items()
                if (parsed := _published(version, meta)) is not None}

    def download(self, dist: Dist, dest: Path) -> None:
        """Write the tarball to ``dest`` only when its bytes match ``dist.integrity``."""
        algorithm, expected = _integrity(dist.integrity)
        url = self._tarball_url(dist.tarball)
        digest = hashlib.new(algorithm)
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=".download-", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(handle, "wb") as out, self._open(url) as response:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.digest() != expected:
                got = base64.b64encode(digest.digest()).decode()
                raise BuildpackFailed(
                    f"failed to download {url}: its {algorithm} is {got}, but the registry's "
                    f"dist.integrity says {dist.integrity}",
                    hint="the registry or a proxy altered the file; retry, and check the "
                         "registry in your npm configuration")
            os.replace(tmp, dest)
        except (OSError, ValueError) as exc:
            raise self._failed("download", url, exc) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _tarball_url(self, tarball: str) -> str:
        # As npm does by default (replace-registry-host=npmjs): a mirror's packument may still
        # name registry.npmjs.org; fetch from the configured registry instead.
        default = urllib.parse.urlsplit(DEFAULT_REGISTRY)
        parts = urllib.parse.urlsplit(tarball)
        if parts.netloc == default.netloc and self.url != DEFAULT_REGISTRY:
            return urllib.parse.urljoin(self.url, parts.path.lstrip("/"))
        return tarball

    def _open(self, url: str, *, accept: str = "*/*") -> Any:
        request = urllib.request.Request(url, headers={"Accept": accept,
                                                       "User-Agent": "hybridless-nodejs"})
        return _opener(self.env, url).open(request, timeout=TIMEOUT)

    def _failed(self, action: str, url: str, exc: BaseException) -> BuildpackFailed:
        if isinstance(exc, BuildpackFailed):
            return exc
        reason = getattr(exc, "reason", None) or exc
        return BuildpackFailed(
            f"failed to {action} from {url}: {reason}",
            hint="check the registry in your npm configuration (`npm config get registry`), "
                 "HTTPS_PROXY/NO_PROXY and SSL_CERT_FILE in the build environment")


def registry_from_config(env: Mapping[str, str], app_dir: Path,
                         configured: str | None = None) -> Registry:
    """The registry npm would use: ``configured`` (what ``npm config get registry`` said),
    else ``npm_config_registry``, else ``registry=`` of the app's, the user's or the global
    npmrc, else the public registry."""
    url = configured or env.get("npm_config_registry") or env.get("NPM_CONFIG_REGISTRY")
    if not url:
        home = env.get("HOME", "")
        npmrcs = [app_dir / ".npmrc",
                  Path(env.get("npm_config_userconfig") or os.path.join(home, ".npmrc")),
                  Path(env.get("npm_config_globalconfig") or "/etc/npmrc")]
        url = next((found for path in npmrcs if (found := _npmrc_registry(path, env))), None)
    url = (url or DEFAULT_REGISTRY).strip()
    return Registry(url if url.endswith("/") else url + "/", env)


def _npmrc_registry(path: Path, env: Mapping[str, str]) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() == "registry":
            # npm expands ${VAR} in npmrc values from the environment.
            expanded = value.strip().strip("\"'")
            for name, replacement in env.items():
                expanded = expanded.replace(f"${{{name}}}", replacement)
            return expanded
    return None


def _published(version: str, meta: Any) -> Published | None:
    if not isinstance(meta, Mapping) or not isinstance(meta.get("dist"), Mapping):
        return None
    dist = meta["dist"]
    tarball, integrity = dist.get("tarball"), dist.get("integrity")
    if not isinstance(tarball, str) or not isinstance(integrity, str):
        return None
    engines = meta.get("engines")
    node = engines.get("node") if isinstance(engines, Mapping) else None
    return Published(version, Dist(tarball, integrity), node if isinstance(node, str) else None)


def _integrity(integrity: str) -> tuple[str, bytes]:
    """The strongest sha512/sha384/sha256 entry of a Subresource Integrity string."""
    found: dict[str, bytes] = {}
    for entry in integrity.split():
        algorithm, _, encoded = entry.partition("-")
        if algorithm in ("sha512", "sha384", "sha256"):
            try:
                found[algorithm] = base64.b64decode(encoded.split("?", 1)[0], validate=True)
            except ValueError:
                continue
    for algorithm in ("sha512", "sha384", "sha256"):
        if algorithm in found:
            return algorithm, found[algorithm]
    raise BuildpackFailed(f"failed to verify a download: dist.integrity {integrity!r} has no "
                          "sha512, sha384 or sha256 entry",
                          hint="use a registry that publishes sha512 integrity (npm's does)")


def _bypassed(host: str, no_proxy: str) -> bool:
    """NO_PROXY as curl reads it: ``*``, or host names matched as themselves or as a suffix."""
    for entry in no_proxy.replace(" ", ",").split(","):
        name = entry.strip().lstrip(".").rsplit(":", 1)[0] if entry.strip() != "*" else "*"
        if name == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def _opener(env: Mapping[str, str], url: str) -> urllib.request.OpenerDirector:
    """An opener using the build environment's proxy and CA bundle, not the process's."""
    proxies = {scheme: env[name] for scheme, names in
               (("https", ("https_proxy", "HTTPS_PROXY")), ("http", ("http_proxy", "HTTP_PROXY")))
               for name in names if env.get(name)}
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY")
    host = urllib.parse.urlsplit(url).hostname or ""
    if no_proxy and _bypassed(host, no_proxy):
        proxies = {}
    context = ssl.create_default_context(cafile=env.get("SSL_CERT_FILE") or None)
    extra = env.get("NODE_EXTRA_CA_CERTS")
    if extra and os.path.isfile(extra):
        context.load_verify_locations(cafile=extra)
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies),
                                       urllib.request.HTTPSHandler(context=context))

