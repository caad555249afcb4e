"""The run image a build uses: ``--run-image``, or the stack chosen as CONTRACT §6 orders.

The chosen stack also names the build image (for the ``docker`` executor) and the user its
images run as; a bare ``--run-image`` has neither.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lifecycle.buildcontainer.choice import BuildImage
from lifecycle.descriptor import Descriptor
from lifecycle.errors import BaseImageNotFound, UsageError
from lifecycle.image import image, reference, transports
from lifecycle.phases.detect import DetectOutcome
from lifecycle.phases.label import STACK_LABEL

if TYPE_CHECKING:
    from lifecycle.image.transports.registry import RegistryOptions


@dataclass(frozen=True)
class BaseOptions:
    """The command line's say in the choice."""

    run_image: str | None = None
    stack: str | None = None
    platform: str | None = None
    registry: RegistryOptions | None = None


@dataclass(frozen=True)
class ChosenBase:
    """The run image a build uses, and the stack it belongs to (CONTRACT §6)."""

    ref: reference.Reference
    image: image.Image
    stack: str | None
    """The stack id the build label records."""
    provides: Mapping[str, str]
    """What the run image already has, from the stack file (empty for a bare run image)."""
    build_image: BuildImage | None = None
    """The stack's build image, for the ``docker`` executor (None with ``--run-image``)."""
    user: str | None = None
    """The stack's ``uid:gid``, the image's default user (None: the run image's own)."""


def choose_base(options: BaseOptions, desc: Descriptor, outcome: DetectOutcome,
                log: logging.Logger) -> ChosenBase:
    """The run image and its stack, chosen as CONTRACT §6 orders them."""
    if options.run_image is not None:
        log.info("stack: none (--run-image %s was given; it overrides any stack)",
                 options.run_image)
        ref = reference.parse(options.run_image)
        log.info("reading run image %s", ref)
        base = transports.read_image(ref, platform=options.platform or host_platform(),
                                     registry=options.registry)
        check_platform(base, str(ref), options.platform)
        # A run image made for a stack says so; a bare base has no stack.
        return ChosenBase(ref, base, base.labels.get(STACK_LABEL), {})

    from lifecycle.image.transports.store import open_store
    from stacks import catalog, choose, provide

    known = catalog.load()
    functions = (*desc.functions, *outcome.functions)
    runtime = choose.detected_runtime(
        (fn.runtime for fn in functions),
        ((entry.name, entry.metadata) for entry in outcome.plan),
        (member.id for member in outcome.group), known)
    choice = choose.choose(known, runtime, descriptor_stack=desc.stack,
                           cli_stack=options.stack)
    assert choice.stack is not None  # only --run-image chooses no stack
    stack = choice.stack
    log.info("stack: %s (%s)", stack.id, choice.reason)
    if options.platform and options.platform != stack.platform:
        raise UsageError(f"failed to build for {options.platform}: stack {stack.id} is "
                         f"{stack.platform}", hint="pick a stack of that platform with --stack")
    store = open_store()
    ref, base = provide.run_image(stack, store, registry=options.registry)
    check_platform(base, f"stack {stack.id}'s run image {ref}", options.platform)
    # Read (or built) only when the docker executor is chosen and the engine lacks it.
    build_image = BuildImage(provide.build_image_name(stack), f"stack {stack.id}",
                             lambda: provide.build_image(stack, store,
                                                         registry=options.registry)[1])
    # Reference images often run as root (node, python and Lambda images do): the stack's
    # user is what its images run as, whoever made the base.
    return ChosenBase(ref, base, stack.id, stack.provided, build_image, stack.user.spec)


def host_platform() -> str:
    """``linux/<arch>`` of this machine, the only platform the host executor builds for."""
    import platform

    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    return f"linux/{arch.get(machine, machine)}"


def check_platform(base: image.Image, where: str, wanted: str | None) -> None:
    """Refuse a run image of another platform than ``--platform`` or, by default, this host."""
    have = "/".join(base.platform.split("/")[:2])
    if wanted and have != "/".join(wanted.split("/")[:2]):
        raise BaseImageNotFound(f"failed to build for {wanted}: {where} is {base.platform}",
                                hint=f"pass a run image for {wanted}, or drop --platform")
    host = host_platform()
    if have != host:
        raise UsageError(
            f"failed to build on {where}: it is {base.platform}, and buildpacks run on this "
            f"machine ({host}), so native code would not match",
            hint=f"build on a {have} machine, or pick a {host} run image or stack")
