"""Amazon ECR: host detection, registry credentials and repositories created on first push.

The registry client asks :func:`credentials_for` for Basic-auth credentials whenever a
``docker://`` host is an ECR host (CONTRACT §5); the push path calls
:func:`ensure_repository` once per repository before uploading.
"""

from __future__ import annotations

from pathlib import Path

from lifecycle.ecr.client import AwsTarget, target_for
from lifecycle.ecr.credentials import EcrCredentials, login
from lifecycle.ecr.hosts import EcrHost, is_ecr_host, parse_host
from lifecycle.ecr.naming import (
    DEFAULT_STAGE,
    check_repository,
    default_tag,
    hybridless_repository,
)
from lifecycle.ecr.repository import RepositoryState, ensure_repository, lifecycle_policy
from lifecycle.ecr.settings import EcrOverrides, EcrSettings, from_table, merge, parse_tag_flag
from lifecycle.errors import DescriptorSchemaError
from lifecycle.paths import cache_root

__all__ = [
    "AwsTarget",
    "EcrCredentials",
    "EcrHost",
    "EcrOverrides",
    "EcrSettings",
    "RepositoryState",
    "credentials_for",
    "default_tag",
    "ensure_repository",
    "from_table",
    "hybridless_repository",
    "is_ecr_host",
    "lifecycle_policy",
    "merge",
    "parse_host",
    "parse_tag_flag",
    "prepare_repository",
    "repository_name",
    "target_for",
]


def credentials_for(
    host: str,
    *,
    profile: str | None = None,
    ca_bundle: Path | None = None,
    cache_dir: Path | None = None,
) -> EcrCredentials | None:
    """Return ECR credentials for ``host``, or ``None`` when ``host`` is not an ECR host.

    ``cache_dir`` defaults to the lifecycle's cache root (``--cache-dir`` when given).
    """
    parsed = parse_host(host)
    if parsed is None:
        return None
    target = target_for(parsed.region, profile=profile, ca_bundle=ca_bundle)
    return login(parsed, target, cache_root() if cache_dir is None else cache_dir)


def prepare_repository(
    host: str,
    repository: str,
    settings: EcrSettings,
    *,
    profile: str | None = None,
    ca_bundle: Path | None = None,
) -> RepositoryState | None:
    """Before a push to ``host/repository``: ensure the ECR repository; ``None`` if not ECR."""
    parsed = parse_host(host)
    if parsed is None:
        return None
    target = target_for(parsed.region, profile=profile, ca_bundle=ca_bundle)
    return ensure_repository(parsed, repository, settings, target)


def repository_name(
    settings: EcrSettings,
    *,
    plain: str,
    function: str,
    stage: str | None,
    project_name: str | None,
) -> str:
    """The repository a function's image goes to: ``plain`` as given, or Hybridless's name.

    Hybridless naming takes the service from ``[io.hybridless.ecr] service``, else the
    descriptor's ``[_].name``; the stage defaults to Serverless's ``dev``.
    """
    if settings.repository_naming == "plain":
        check_repository(plain)
        return plain
    service = settings.service or project_name
    if not service:
        raise DescriptorSchemaError(
            "failed to name the ECR repository: hybridless naming needs a service name",
            hint="set [io.hybridless.ecr] service or [_] name in project.toml",
        )
    return hybridless_repository(service, function, stage or DEFAULT_STAGE)
