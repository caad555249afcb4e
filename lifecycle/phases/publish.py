"""Where a build's image goes: the registry options with ECR's, and Hybridless naming.

With ``--repository-naming hybridless`` each function gets an image of its own, pushed to a
repository of its own (CONTRACT §5); plain naming writes the one image to ``--image``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.cache import layers as cache_mod
from lifecycle.cache import reuse as reuse_mod
from lifecycle.cache.appindex import AppIndex
from lifecycle.descriptor import Descriptor, Function
from lifecycle.errors import UsageError
from lifecycle.image import image, reference, transports
from lifecycle.phases.build import BuildOutcome
from lifecycle.phases.export import Exported, export

if TYPE_CHECKING:
    from lifecycle.ecr.settings import EcrOverrides
    from lifecycle.image.transports.registry import RegistryOptions


def with_ecr(registry: RegistryOptions | None, overrides: EcrOverrides | None,
             desc: Descriptor) -> RegistryOptions | None:
    """The registry options with the ECR settings: the descriptor's, then the flags'."""
    if desc.ecr is None and overrides is None:
        return None
    from lifecycle.ecr.settings import EcrOverrides, EcrSettings, merge
    from lifecycle.image.transports.registry import RegistryOptions

    settings = merge(desc.ecr or EcrSettings(), overrides or EcrOverrides())
    return dataclasses.replace(registry or RegistryOptions(), ecr=settings)


def push_per_function(app_dir: Path, desc: Descriptor, built: BuildOutcome, base: image.Image,
                       first: Exported, dest: reference.Reference, tags: tuple[str, ...],
                       registry: RegistryOptions, project: cache_mod.ProjectCache, *,
                       run_image_ref: reference.Reference, stack: str | None, mtime: int,
                       log: logging.Logger, user: str | None) -> tuple[str, ...]:
    """Hybridless naming: one image per function, that function the default process.

    Each goes to ``HOST/<Hybridless's repository name>`` (``--image`` gives only the host)
    tagged with the first 12 hex digits of its manifest digest and each ``--tag``'s tag
    (CONTRACT §5). Returns every pushed reference, pinned by digest.
    """
    from lifecycle.ecr import EcrSettings, default_tag, repository_name
    from lifecycle.image.transports.registry import pinned

    naming = registry.ecr or EcrSettings()
    pushed: list[str] = []
    for process in built.processes:
        exported = first if process.name == first.default_process else export(
            app_dir, desc, built, base, run_image_ref=run_image_ref, blobs=project.blobs,
            stack=stack, mtime=mtime, default_process=process.name, log=log,
            app_index=AppIndex(project.project_dir / "app-index.json"), user=user,
            remote=reuse_mod.remote_blobs(project, registry), executor=project.executor)
        digest = exported.image.digest
        repository = repository_name(naming, plain=dest.name, function=process.name,
                                     stage=desc.stage, project_name=desc.name)
        refs = [reference.Reference("docker", name=repository, tag=tag, host=dest.host)
                for tag in dict.fromkeys((default_tag(digest), *tags))]
        log.info("writing %s (function %s)", refs[0], process.name)
        transports.write_image(exported.image, refs[0], tags=refs[1:], progress=log.info,
                               registry=registry)
        pushed.extend(pinned(refs, digest))
    return tuple(pushed)


def function_tags(dest: reference.Reference, texts: tuple[str, ...]) -> tuple[str, ...]:
    """Hybridless naming: the tags each function's image also gets, checked before building.

    Each function's image goes to a repository of its own, so a ``--tag`` is a bare ``TAG``
    or ``docker://HOST/ANY:TAG`` of which only the tag is used.
    """
    if dest.transport != "docker":
        raise UsageError(f"failed to use --repository-naming hybridless with --image {dest}: "
                         "it needs a registry (docker://HOST/…) to name repositories in",
                         hint="e.g. --image docker://123456789012.dkr.ecr.eu-west-1"
                              ".amazonaws.com/service")
    found: list[str] = []
    for text in texts:
        if _BARE_TAG_RE.fullmatch(text):
            found.append(text)
            continue
        ref = reference.parse(text)
        if ref.transport != "docker" or ref.digest is not None:
            raise UsageError(f"failed to use --tag {text} with --repository-naming hybridless: "
                             "each function's image goes to its own repository",
                             hint="give a bare TAG, or docker://HOST/ANY:TAG (only its tag "
                                  "is used)")
        found.append(ref.tag_or_default)
    return tuple(dict.fromkeys(found))


# A tag as the distribution spec allows it.
_BARE_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def pushed_references(refs: list[reference.Reference], digest: str) -> tuple[str, ...]:
    """The registry references among ``refs``, pinned by ``digest``."""
    remote = [ref for ref in refs if ref.transport == "docker"]
    if not remote:
        return ()
    from lifecycle.image.transports.registry import pinned

    return tuple(pinned(remote, digest))


def previous_of_functions(dest: reference.Reference, tags: tuple[str, ...],
                          registry: RegistryOptions, desc: Descriptor,
                          functions: tuple[Function, ...]) -> reference.Reference | None:
    """Hybridless naming's default previous image: the first function's, by its first tag.

    Every function's image has the same buildpack layers, so one of them is enough. With no
    ``--tag`` there is no stable name (the default tag is the digest's), hence no default.
    """
    if not tags or not functions:
        return None
    from lifecycle.ecr import EcrSettings, repository_name

    repository = repository_name(registry.ecr or EcrSettings(), plain=dest.name,
                                 function=functions[0].name, stage=desc.stage,
                                 project_name=desc.name)
    return reference.Reference("docker", name=repository, tag=tags[0], host=dest.host)
