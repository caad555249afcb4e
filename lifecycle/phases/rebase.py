"""``rebase``: put an image on a new run image by rewriting only its manifest and config.

The build label records the run image's layer count and top layer. Rebase checks that the
image still starts with that base (unless ``--force``), swaps those layers for the new run
image's, and records the new base in the label. No layer is rebuilt or recompressed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from lifecycle.errors import BuildError, UsageError
from lifecycle.image import image, reference, transports
from lifecycle.phases import label as label_mod
from lifecycle.phases.label import BUILD_LABEL, STACK_LABEL, RunImage


@dataclass(frozen=True)
class Rebased:
    """What ``rebase --json`` prints."""

    image: str
    run_image: str
    digest: str
    previous_digest: str
    base_digest: str
    pushed: tuple[str, ...] = ()
    """The image pinned by digest when it lives in a registry."""

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json`` (``pushed`` only for a registry image)."""
        document = dict(self.__dict__)
        if self.pushed:
            document["pushed"] = list(self.pushed)
        else:
            del document["pushed"]
        return document


def rebase(ref_text: str, run_image_text: str, *, force: bool,
           log: logging.Logger, platform: str | None = None, registry: Any = None) -> Rebased:
    """Rebase the image at ``ref_text`` onto ``run_image_text``; write it back in place.

    ``platform`` and ``registry`` (``RegistryOptions``) apply to ``docker://`` references.
    """
    ref = reference.parse(ref_text)
    new_ref = reference.parse(run_image_text)
    img = transports.read_image(ref, platform=platform, registry=registry)
    label = label_mod.read(img.labels, ref)
    if label is None:
        raise UsageError(f"failed to rebase {ref}: it has no {BUILD_LABEL} label, so its base "
                         "layers are unknown", hint="rebase images built by hybridless-lifecycle")
    _check_dockerfile(ref, label, force)
    old = label.run_image
    count = old.layers
    if count > len(img.layers):
        raise BuildError(f"failed to rebase {ref}: its label claims {count} base layers but "
                         f"the image has {len(img.layers)}")
    top = img.layers[count - 1].diff_id if count else None
    if top != old.top_layer and not force:
        raise BuildError(f"failed to rebase {ref}: layer {count} is {top}, not the recorded "
                         f"run-image top layer {old.top_layer}",
                         hint="the image was modified after it was built; --force skips this")
    log.info("reading run image %s", new_ref)
    new_base = transports.read_image(new_ref, platform=platform, registry=registry)
    if not force:
        _check_platform(img, new_base, new_ref)
        _check_stack(label.stack, new_base.labels.get(STACK_LABEL), new_ref)
    out = image.replace_base(img, count, new_base)
    out_labels = out.labels
    out_labels[BUILD_LABEL] = label.rebased(RunImage.of(new_ref, new_base)).encode()
    out = image.with_config(out, labels=out_labels)
    digest = transports.write_image(out, ref, progress=log.info, registry=registry)
    pushed: tuple[str, ...] = ()
    if ref.transport == "docker":
        from lifecycle.image.transports.registry import pinned

        pushed = tuple(pinned([ref], digest))
    return Rebased(image=str(ref), run_image=str(new_ref), digest=digest,
                   previous_digest=img.digest, base_digest=new_base.digest, pushed=pushed)


def _check_stack(recorded: str | None, offered: str | None,
                 new_ref: reference.Reference) -> None:
    """Refuse a run image of another stack (or none) than the one the image was built on."""
    if recorded != offered:
        raise BuildError(f"failed to rebase: run image {new_ref} belongs to stack "
                         f"{offered or '(none)'}, the image was built on {recorded or '(none)'}",
                         hint="rebase onto a run image of the same stack, or --force")


def _check_dockerfile(ref: reference.Reference, label: label_mod.BuildLabel,
                      force: bool) -> None:
    """A Dockerfile's layers were built against the old base, so swapping it needs consent."""
    if label.dockerfile is None:
        return
    path = label.dockerfile.get("path")
    if label.dockerfile.get("mode") != "extend":
        raise BuildError(f"failed to rebase {ref}: it was built by the Dockerfile {path} in "
                         "container mode, whose base is the Dockerfile's, not a run image of "
                         "ours", hint="rebuild it instead")
    if not force:
        raise BuildError(f"failed to rebase {ref}: the Dockerfile {path} added layers built "
                         "against the old run image (installed packages may depend on its "
                         "libraries)",
                         hint="rebuild the image, or pass --force if the Dockerfile's layers "
                              "do not depend on the run image")


def _check_platform(img: image.Image, new_base: image.Image,
                    new_ref: reference.Reference) -> None:
    for key in ("os", "architecture"):
        if img.config.get(key) != new_base.config.get(key):
            raise BuildError(f"failed to rebase: run image {new_ref} is "
                             f"{new_base.config.get(key)}, the image is {img.config.get(key)}",
                             hint="pick a run image of the same platform, or --force")
