"""A boto3 ECR client for one region, and the translation of AWS failures into our errors."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from lifecycle.errors import LifecycleError, RegistryAuthError, RegistryError, RegistryUnreachable

# Error codes with which AWS says "who you are" is the problem rather than "what you asked".
_AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "ExpiredToken",
        "AccessDeniedException",
        "AccessDenied",
        "MissingAuthenticationTokenException",
    }
)


@dataclass(frozen=True)
class AwsTarget:
    """Where ECR's control plane is and who we are there."""

    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    ca_bundle: Path | None = None

    def describe(self) -> str:
        """Name the target for error messages (never a secret)."""
        where = self.endpoint_url or f"region {self.region}"
        return f"{where}, profile {self.profile}" if self.profile else where


def target_for(
    region: str,
    *,
    profile: str | None = None,
    ca_bundle: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> AwsTarget:
    """Resolve the endpoint as AWS SDKs do: AWS_ENDPOINT_URL_ECR, else AWS_ENDPOINT_URL."""
    env = os.environ if environ is None else environ
    endpoint = env.get("AWS_ENDPOINT_URL_ECR") or env.get("AWS_ENDPOINT_URL") or None
    profile = profile or env.get("AWS_PROFILE") or None
    return AwsTarget(region=region, profile=profile, endpoint_url=endpoint, ca_bundle=ca_bundle)


def aws_session(target: AwsTarget) -> Any:
    """Return a boto3 session for ``target`` (the standard credential chain, profiles included)."""
    import boto3
    import botocore.exceptions

    if not target.region:
        raise RegistryAuthError(
            "failed to reach Amazon ECR: no AWS region is known",
            hint="use a registry host that names its region, or set AWS_REGION",
        )
    try:
        session = boto3.session.Session(profile_name=target.profile, region_name=target.region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise RegistryAuthError(
            f"failed to load AWS credentials: {exc}",
            hint="name a profile from ~/.aws/config (AWS_PROFILE) or unset it",
        ) from exc
    return session


def access_key_id(session: Any, target: AwsTarget) -> str:
    """Return the access key id the credential chain resolves to (raises 71 when there is none)."""
    import botocore.exceptions

    action = "load AWS credentials"
    try:
        credentials = session.get_credentials()
    except Exception as exc:
        translate(exc, action, target)
    if credentials is None:
        translate(botocore.exceptions.NoCredentialsError(), action, target)
    return str(credentials.access_key or "")


def ecr_client(target: AwsTarget, session: Any | None = None) -> Any:
    """Return a boto3 ECR client for ``target``."""
    import botocore.config

    session = aws_session(target) if session is None else session
    # Two attempts and short timeouts: a wrong endpoint should fail in seconds, not minutes.
    config = botocore.config.Config(
        retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10, read_timeout=60
    )
    # verify=None lets botocore apply AWS_CA_BUNDLE and the profile's ca_bundle itself.
    verify = str(target.ca_bundle) if target.ca_bundle else None
    return session.client("ecr", endpoint_url=target.endpoint_url, verify=verify, config=config)


def translate(exc: Exception, action: str, target: AwsTarget) -> NoReturn:
    """Raise the error of CONTRACT §1 that fits a boto3 failure while doing ``action``."""
    import botocore.exceptions as bce

    where = target.describe()
    if isinstance(exc, LifecycleError):
        raise exc
    if isinstance(exc, bce.ClientError):
        code, message = _client_error(exc.response)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        text = f"failed to {action} ({where}): {code}: {message}".rstrip(": ")
        if code in _AUTH_CODES or status in (401, 403):
            raise RegistryAuthError(
                text, hint="check the AWS credentials (aws sts get-caller-identity)"
            ) from exc
        raise RegistryError(text) from exc
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        raise RegistryAuthError(
            f"failed to {action} ({where}): no complete AWS credentials were found",
            hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run aws configure",
        ) from exc
    if isinstance(exc, bce.NoRegionError):
        raise RegistryAuthError(
            f"failed to {action}: no AWS region is known", hint="set AWS_REGION"
        ) from exc
    if isinstance(exc, (bce.ProfileNotFound, bce.CredentialRetrievalError)):
        raise RegistryAuthError(f"failed to {action} ({where}): {_one_line(exc)}") from exc
    if isinstance(exc, bce.SSLError):
        raise RegistryUnreachable(
            f"failed to {action} ({where}): TLS verification failed",
            hint="pass --ca-bundle FILE or set AWS_CA_BUNDLE to the CA that signs the endpoint",
        ) from exc
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectionError, bce.HTTPClientError)):
        raise RegistryUnreachable(
            f"failed to {action}: Amazon ECR at {where} did not answer ({type(exc).__name__})",
            hint="check the network, AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL and the region",
        ) from exc
    if isinstance(exc, bce.BotoCoreError):
        raise RegistryError(f"failed to {action} ({where}): {_one_line(exc)}") from exc
    raise exc


def _client_error(response: Mapping[str, Any]) -> tuple[str, str]:
    """Return the error code and a one-line message, also from an XML body botocore left raw."""
    error = response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", ""))
    # Some emulators answer a JSON-protocol call with a query-protocol XML error; botocore
    # then reports the HTTP status as the code and the whole document as the message.
    found_code = re.search(r"<Code>([^<]{1,200})</Code>", message)
    if found_code:
        code = found_code[1]
        found_message = re.search(r"<Message>([^<]{0,500})</Message>", message)
        message = found_message[1] if found_message else ""
    return code, " ".join(message.split())[:500]


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:500]
