"""A loopback npm registry serving chosen packuments and tarballs, counting requests.

It stands in for a registry mirror: the real tarballs (downloaded once per session from the
public registry) or hostile ones, under packuments the test writes.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def integrity_of(data: bytes) -> str:
    """The ``sha512-…`` Subresource Integrity string of ``data``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@dataclass
class NpmServer:
    """Packages by name: version → (tarball bytes, packument extras such as engines)."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    token: str | None = None
    """When set, packages named in ``private`` answer 401 without ``Bearer <token>``."""
    private: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)

    def allows(self, path: str, authorization: str | None) -> bool:
        """Whether a request for ``path`` with that Authorization header is served."""
        name = path.lstrip("/").split("/", 1)[0]
        if name not in self.private:
            return True
        return authorization == f"Bearer {self.token}"

    def publish(self, name: str, version: str, tarball: bytes, *,
                integrity: str | None = None, extra: Mapping[str, Any] | None = None) -> None:
        """Add one version; ``integrity`` overrides the true one (for hostile tests)."""
        path = f"/{name}"
        document = json.loads(self.files.get(path, b'{"versions": {}}'))
        tarball_path = f"/{name}/-/{name}-{version}.tgz"
        document["name"] = name
        document["versions"][version] = {
            "name": name, "version": version, **(extra or {}),
            "dist": {"tarball": self.url + tarball_path,
                     "integrity": integrity or integrity_of(tarball)}}
        self.files[path] = json.dumps(document).encode()
        self.files[tarball_path] = tarball


@contextmanager
def serving() -> Iterator[NpmServer]:
    """Run a server on 127.0.0.1 for the duration of the block."""
    server = NpmServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append(self.path)
            if not server.allows(self.path.split("?", 1)[0], self.headers.get("Authorization")):
                server.refused.append(self.path)
                self.send_error(401)
                return
            body = server.files.get(self.path.split("?", 1)[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()


def cached_download(cache: Path, name: str, version: str) -> tuple[bytes, Mapping[str, Any]]:
    """``name@version``'s tarball and its packument extras (``integrity``, ``engines``) from
    the public registry, through the buildpack's own client, downloaded once per cache."""
    from buildpacks.nodejs.registry import DEFAULT_REGISTRY, registry_from_config

    tarball = cache / f"{name}-{version}.tgz"
    meta = cache / f"{name}-{version}.json"
    if not (tarball.is_file() and meta.is_file()):
        registry = registry_from_config({**os.environ, "npm_config_registry": DEFAULT_REGISTRY},
                                        cache)
        published = registry.packument(name)[version]
        registry.download(published.dist, tarball)
        extra: dict[str, Any] = {"integrity": published.dist.integrity}
        if published.engines_node:
            extra["engines"] = {"node": published.engines_node}
        meta.write_text(json.dumps(extra))
    return tarball.read_bytes(), json.loads(meta.read_text())


def publish_release(server: NpmServer, cache: Path, node_version: str, npm_version: str) -> None:
    """Publish one real Node.js release (this machine's package) and one real npm, as the
    public registry has them, downloaded once into ``cache``."""
    import platform

    from buildpacks.nodejs.runtime import package_for

    cache.mkdir(parents=True, exist_ok=True)
    package = package_for(platform.machine())
    node, node_meta = cached_download(cache, package, node_version)
    npm, npm_meta = cached_download(cache, "npm", npm_version)
    server.publish(package, node_version, node, integrity=node_meta["integrity"])
    server.publish("npm", npm_version, npm, integrity=npm_meta["integrity"],
                   extra={"engines": npm_meta.get("engines", {})})
