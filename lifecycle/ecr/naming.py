"""Repository names and default tags for ECR pushes (CONTRACT §5).

``hybridless`` naming reproduces Hybridless 0.1.46 (github.com/Hybridless/hybridless, commit
7cc06d0): ``src/resources/Image.ts`` ``_getECRRepoName`` returns
``${plugin.getName()}/${imageName}-${stage}.v3`` lower-cased, where ``plugin.getName()``
(``src/index.ts``) is ``naming.getNormalizedFunctionName(service.replace(/-/g, ''))`` and the
image name (``src/resources/BaseEvents/FunctionContainerBaseEvent.ts`` ``getImageName``) is
``${func.getName()}.${eventIndex}`` lower-cased, ``func.getName()`` (``src/resources/Function.ts``)
being ``getNormalizedFunctionName(functionName.replace(/-/g, ''))``. Serverless's
``getNormalizedFunctionName`` (serverless/serverless ``lib/plugins/aws/lib/naming.js``) turns
``-`` into ``Dash`` and ``_`` into ``Underscore`` and upper-cases the first letter; Hybridless
has already removed the dashes, and the final lower-casing undoes the capital.
"""

from __future__ import annotations

import re

from lifecycle.errors import InvalidReference

# What ECR (and the distribution spec) accept as a repository name.
_COMPONENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_MAX_REPOSITORY = 256
_DIGEST_RE = re.compile(r"sha256:([0-9a-f]{64})")
DEFAULT_STAGE = "dev"  # Serverless's default stage, which Hybridless inherits


def serverless_normalized(name: str) -> str:
    """Serverless's ``getNormalizedFunctionName``: - → Dash, _ → Underscore, capital first."""
    replaced = name.replace("-", "Dash").replace("_", "Underscore")
    return replaced[:1].upper() + replaced[1:]


def hybridless_repository(service: str, function: str, stage: str, event_index: int = 0) -> str:
    """Return the repository Hybridless 0.1.46 pushes ``function``'s image to."""
    if event_index < 0:
        raise InvalidReference(f"failed to name the ECR repository: event index {event_index} < 0")
    source = f"service {service!r}, function {function!r}, stage {stage!r}"
    if not (service.isascii() and function.isascii() and stage.isascii()):
        # Python's and JavaScript's case mappings differ outside ASCII (e.g. "İ"), and ECR
        # accepts only ASCII anyway: refuse rather than guess what Hybridless would have made.
        raise InvalidReference(
            f"failed to name the ECR repository from {source}: only ASCII names are accepted",
            hint="set [io.hybridless.ecr] service to an ASCII name",
        )
    prefix = serverless_normalized(service.replace("-", ""))
    image = serverless_normalized(function.replace("-", ""))
    # JavaScript's toLowerCase and Python's lower agree on every character a valid name holds;
    # anything else is refused below.
    name = f"{prefix}/{image}.{event_index}-{stage}.v3".lower()
    check_repository(name, source=source)
    return name


def check_repository(name: str, *, source: str | None = None) -> None:
    """Raise ``InvalidReference`` unless ``name`` is a repository name ECR accepts."""
    if 2 <= len(name) <= _MAX_REPOSITORY and name.isascii() and _REPOSITORY_RE.fullmatch(name):
        return
    origin = f" (from {source})" if source else ""
    raise InvalidReference(
        f"failed to name the ECR repository: {name!r}{origin} is not a valid repository name",
        hint="use lower-case letters, digits and . _ - / separators (2 to 256 characters)",
    )


def default_tag(manifest_digest: str) -> str:
    """Return the first 12 hex digits of a ``sha256:`` manifest digest, the default ECR tag."""
    match = _DIGEST_RE.fullmatch(manifest_digest)
    if not match:
        raise InvalidReference(
            f"failed to derive a tag: {manifest_digest!r} is not a sha256 manifest digest"
        )
    return match[1][:12]
