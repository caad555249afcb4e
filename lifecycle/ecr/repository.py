"""Make sure an ECR repository exists before a push: create it once, then leave it alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lifecycle.ecr.client import AwsTarget, ecr_client, translate
from lifecycle.ecr.hosts import EcrHost
from lifecycle.ecr.naming import check_repository
from lifecycle.ecr.settings import EcrSettings
from lifecycle.errors import RegistryError


@dataclass(frozen=True)
class RepositoryState:
    """What ``ensure_repository`` found or did."""

    name: str
    uri: str
    created: bool


def ensure_repository(
    host: EcrHost, name: str, settings: EcrSettings, target: AwsTarget
) -> RepositoryState:
    """Create ``name`` in ``host``'s registry unless it exists; an existing one is not touched."""
    check_repository(name)
    client = ecr_client(target)
    uri = f"{host.host}/{name}"
    if _exists(client, host, name, target):
        return RepositoryState(name=name, uri=uri, created=False)
    if not settings.create_repository:
        raise RegistryError(
            f"failed to push to {uri}: the repository does not exist",
            hint="create it, or set create-repository = true in [io.hybridless.ecr]",
        )
    action = f"create the ECR repository {uri}"
    try:
        client.create_repository(
            registryId=host.account,
            repositoryName=name,
            imageTagMutability=settings.tag_mutability,
            imageScanningConfiguration={"scanOnPush": settings.scan_on_push},
            encryptionConfiguration={"encryptionType": settings.encryption},
            tags=[{"Key": key, "Value": value} for key, value in settings.tags],
        )
    except Exception as exc:
        if _code(exc) == "RepositoryAlreadyExistsException":
            # Another build created it between our look and our create: it is theirs to
            # configure, exactly as if it had existed before.
            return RepositoryState(name=name, uri=uri, created=False)
        translate(exc, action, target)
    try:
        client.put_lifecycle_policy(
            registryId=host.account,
            repositoryName=name,
            lifecyclePolicyText=lifecycle_policy(settings.keep_images),
        )
    except Exception as exc:
        translate(exc, f"set the lifecycle policy of {uri}", target)
    return RepositoryState(name=name, uri=uri, created=True)


def lifecycle_policy(keep_images: int) -> str:
    """Return the policy text that expires all but the newest ``keep_images`` images."""
    rule = {
        "rulePriority": 1,
        "description": f"Keep the newest {keep_images} images",
        "selection": {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": keep_images,
        },
        "action": {"type": "expire"},
    }
    return json.dumps({"rules": [rule]}, sort_keys=True, separators=(",", ":"))


def _exists(client: Any, host: EcrHost, name: str, target: AwsTarget) -> bool:
    try:
        client.describe_repositories(registryId=host.account, repositoryNames=[name])
    except Exception as exc:
        if _code(exc) == "RepositoryNotFoundException":
            return False
        translate(exc, f"look up the ECR repository {host.host}/{name}", target)
    return True


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code"))
    return None
