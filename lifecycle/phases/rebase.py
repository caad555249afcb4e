"""``rebase``: put an image on a new run image by rewriting only its manifest and config.

The build label records the run image's layer count and top layer. Rebase checks that the
image still starts with that base (unless ``--force``), swaps those layers for the new run
image's, and records the new base in the label. No layer is rebuilt or recompressed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lifecycle.errors import BuildError, UsageError
from lifecycle.image import image, reference, transports
from lifecycle.jsonutil import dumps as canonical
from lifecycle.phases.export import BUILD_LABEL, portable_reference


def rebase(ref_text: str, run_image_text: str, *, force: bool,
           log: logging.Logger) -> dict[str, Any]:
    """Rebase the image at ``ref_text`` onto ``run_image_text``; write it back in place."""
    ref = reference.parse(ref_text)
    new_ref = reference.parse(run_image_text)
    img = transports.read_image(ref)
    labels = img.labels
    if BUILD_LABEL not in labels:
        raise UsageError(f"failed to rebase {ref}: it has no {BUILD_LABEL} label, so its base "
                         "layers are unknown", hint="rebase images built by hybridless-lifecycle")
    label = json.loads(labels[BUILD_LABEL])
    old = label["run-image"]
    count = int(old["layers"])
    if count > len(img.layers):
        raise BuildError(f"failed to rebase {ref}: its label claims {count} base layers but "
                         f"the image has {len(img.layers)}")
    top = img.layers[count - 1].diff_id if count else None
    if top != old.get("top-layer") and not force:
        raise BuildError(f"failed to rebase {ref}: layer {count} is {top}, not the recorded "
                         f"run-image top layer {old.get('top-layer')}",
                         hint="the image was modified after it was built; --force skips this")
    log.info("reading run image %s", new_ref)
    new_base = transports.read_image(new_ref)
    if not force:
        _check_platform(img, new_base, new_ref)
    out = image.replace_base(img, count, new_base)
    label["run-image"] = {
        "reference": portable_reference(new_ref),
        "digest": new_base.digest,
        "layers": len(new_base.layers),
        "top-layer": new_base.layers[-1].diff_id if new_base.layers else None,
    }
    out_labels = out.labels
    out_labels[BUILD_LABEL] = canonical(label).decode()
    out = image.with_config(out, labels=out_labels)
    digest = transports.write_image(out, ref, progress=log.info)
    return {"image": str(ref), "run_image": str(new_ref), "digest": digest,
            "previous_digest": img.digest, "base_digest": new_base.digest}


def _check_platform(img: Any, new_base: Any, new_ref: Any) -> None:
    for key in ("os", "architecture"):
        if img.config.get(key) != new_base.config.get(key):
            raise BuildError(f"failed to rebase: run image {new_ref} is "
                             f"{new_base.config.get(key)}, the image is {img.config.get(key)}",
                             hint="pick a run image of the same platform, or --force")
