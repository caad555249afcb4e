"""What one build's container mounts and which paths it rewrites, from the build's inputs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lifecycle.buildcontainer.executor import BindMount, ContainerSpec, extra_env
from lifecycle.buildcontainer.paths import PathMap
from lifecycle.cache.layers import bp_dirname
from lifecycle.errors import UsageError
from lifecycle.secrets import SECRETS_MOUNT

APP_MOUNT = "/var/task"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Never shadowed by the second mount of the app (see container_spec).
_RESERVED = ("/", "/bin", "/dev", "/etc", "/lib", "/proc", "/run", "/sbin", "/sys", "/tmp",
             "/usr", "/var", APP_MOUNT, "/layers")


def ca_bundle(given: str | None) -> Path | None:
    """``--ca-bundle FILE`` checked, else the host's bundle when it has one."""
    if given is None:
        return HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None
    path = Path(os.path.abspath(given))
    if not path.is_file():
        raise UsageError(f"--ca-bundle {given}: not a readable file",
                         hint="name a PEM file of CA certificates")
    return path


def container_spec(image: str, *, app_dir: Path, layer_dirs: Mapping[str, Path],
                   secrets_dir: Path | None, ca: Path | None, network: str,
                   environ: Mapping[str, str] | None = None) -> ContainerSpec:
    """Mounts: the app read-only at /var/task, each buildpack's layers directory at
    ``/layers/<id>``, the staged secrets read-only at /run/secrets, the CA bundle read-only at
    its own path; and the map from each mounted host directory to its container path.

    The app is also mounted read-only at its host path: buildpacks stage symlinks into it (the
    Node.js install links the app's entries next to the manifest), and a symlink's target is
    file data that argv and env translation cannot reach. Nothing a command writes names it.
    """
    environ = os.environ if environ is None else environ
    app = str(app_dir)
    mounts = [BindMount(app_dir, APP_MOUNT)]
    pairs = {app: APP_MOUNT}
    if not any(app == reserved or reserved.startswith(app + "/") for reserved in _RESERVED):
        mounts.append(BindMount(app_dir, app))
    for buildpack, directory in sorted(layer_dirs.items()):
        target = f"/layers/{bp_dirname(buildpack)}"
        mounts.append(BindMount(directory, target, read_only=False))
        pairs[str(directory)] = target
    if secrets_dir is not None:
        mounts.append(BindMount(secrets_dir, SECRETS_MOUNT))
        pairs[str(secrets_dir)] = SECRETS_MOUNT
    if ca is not None:
        mounts.append(BindMount(ca, str(ca)))
    return ContainerSpec(image=image, mounts=tuple(mounts), paths=PathMap.of(pairs),
                         network=network, extra_env=extra_env(ca, environ))


def image_env(client: Any, image: str) -> dict[str, str]:
    """The build image's own ``PATH`` (and other config env): the base of the build env."""
    config = client.images.get(image).attrs.get("Config") or {}
    env = dict(item.partition("=")[::2] for item in config.get("Env") or ())
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env
