"""One process per function: the shim for handlers, the function's own command otherwise."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from buildpacks.nodejs.project import handler_file, is_node_function
from lifecycle.descriptor import Descriptor, Function
from lifecycle.errors import BuildpackFailed
from lifecycle.functions import hybridless_env
from lifecycle.hookspecs import Process


def shim_command(shim_image_path: str, node: str = "node") -> tuple[str, ...]:
    """How the image starts the shim: with the node layer's binary, else the image's ``node``."""
    return (node, f"{shim_image_path}/index.mjs")


def processes_for(functions: Sequence[Function], descriptor: Descriptor, *, app_dir: Path,
                  has_manifest: bool, shim_image_path: str, built: Mapping[str, Path],
                  log: logging.Logger, node: str = "node") -> tuple[Process, ...]:
    """The processes of the functions this buildpack runs; others are left to their buildpack.

    ``built`` maps the top-level names the app's build produced to where they are on the
    build host, so a handler the build generates (``dist/handler.js``) is found.
    """
    processes = []
    for fn in functions:
        if fn.command:
            command = fn.command
        elif is_node_function(fn, app_dir, has_manifest=has_manifest) or fn.entrypoint.split(
                "/", 1)[0] in built:
            _check_handler(fn, app_dir, built)
            command = shim_command(shim_image_path, node)
        else:
            log.debug("function %s: handler %s is not JavaScript; skipped", fn.name, fn.handler)
            continue
        processes.append(Process(name=fn.name, command=command, event=fn.event,
                                 defaults=hybridless_env(fn, descriptor, language="nodejs"),
                                 default=fn.default))
        log.info("process %s (%s): %s", fn.name, fn.event, fn.handler or " ".join(command))
    if not processes:
        raise BuildpackFailed("failed to build: no function has a JavaScript handler or a command",
                              hint="declare [[io.hybridless.functions]] with handler = "
                                   "\"src/handler.handler\" in project.toml")
    return tuple(processes)


def _check_handler(fn: Function, app_dir: Path, built: Mapping[str, Path]) -> None:
    head, _, rest = fn.entrypoint.partition("/")
    if head in built and rest:
        found = handler_file(built[head], rest)
    elif head in built:
        found = handler_file(built[head].parent, head)
    else:
        found = handler_file(app_dir, fn.entrypoint)
    if found is None:
        raise BuildpackFailed(
            f"failed to build: function '{fn.name}' names handler {fn.handler!r}, but no "
            f"{fn.entrypoint}.js, .mjs, .cjs or {fn.entrypoint}/index.* exists",
            hint="fix 'handler' in project.toml (file path without extension, a dot, then the "
                 "exported function), or check that the build script writes that file")
