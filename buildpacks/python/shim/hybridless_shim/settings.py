"""The shim's inputs, read once from the environment the launcher prepared (CONTRACT §4)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

EVENT_TYPES = ("httpd", "process", "scheduledTask", "launchableTask", "job", "lambdaContainer")
HTTP_FORMATS = ("apigw-v1", "apigw-v2", "alb", "alb-multi")


class SettingsError(ValueError):
    """An environment variable holds a value the shim cannot use."""


@dataclass(frozen=True)
class Cors:
    """The CORS policy from the ``CORS`` variable."""

    origin: str | tuple[str, ...] = "*"
    headers: tuple[str, ...] = ()
    allow_credentials: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything the shim reads from its environment, validated."""

    task_root: str
    event_type: str = "httpd"
    entrypoint: str = "handler"
    entrypoint_func: str = "handler"
    port: int = 8080
    health_route: str | None = None
    timeout_ms: int | None = None
    cors: Cors | None = None
    stage: str | None = None
    memory_mb: str | None = None
    http_format: str = "apigw-v1"
    body_limit: int = 6291456
    concurrency: int = 64
    schedule_input: str | None = None
    function_name: str = "function"
    function_version: str = "$LATEST"
    region: str = "us-east-1"
    runtime_api: str | None = None
    log_group_name: str = ""
    log_stream_name: str = ""
    emulator_timeout_s: int | None = None


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    if not env.get(name, "").strip():
        return None
    return _int(env, name, 0, minimum=1)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip() or default
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def parse_cors(raw: str | None) -> Cors | None:
    """Parse the ``CORS`` JSON (``{"origin", "headers", "allowCredentials"}``); empty means off."""
    if raw is None or not raw.strip() or raw.strip() in ("false", "null"):
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"CORS is not valid JSON: {exc}") from None
    if data is True:
        return Cors()
    if not isinstance(data, dict):
        raise SettingsError('CORS must be a JSON object such as {"origin": "*"}')
    origin = data.get("origin", "*")
    origins: str | tuple[str, ...]
    if isinstance(origin, list):
        origins = tuple(str(o) for o in origin)
    else:
        origins = str(origin)
    headers = data.get("headers") or ()
    if isinstance(headers, str):
        headers = [h.strip() for h in headers.split(",") if h.strip()]
    credentials = data.get("allowCredentials", data.get("allow-credentials", False))
    return Cors(
        origin=origins,
        headers=tuple(str(h) for h in headers),
        allow_credentials=bool(credentials),
    )


def _log_stream_name() -> str:
    # One stream per execution environment, named as Lambda names them.
    return time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + os.urandom(16).hex()


def from_environ(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``env`` (default ``os.environ``); raises SettingsError."""
    env = os.environ if env is None else env
    task_root = env.get("LAMBDA_TASK_ROOT") or os.getcwd()
    entrypoint = env.get("ENTRYPOINT", "").strip() or "handler"
    func = env.get("ENTRYPOINT_FUNC", "").strip() or "handler"
    function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "").strip() or "function"
    return Settings(
        task_root=task_root,
        event_type=_choice(env, "HYBRIDLESS_EVENT_TYPE", "httpd", EVENT_TYPES),
        entrypoint=entrypoint,
        entrypoint_func=func,
        port=_int(env, "PORT", 8080),
        health_route=env.get("HEALTH_ROUTE", "").strip() or None,
        timeout_ms=_optional_int(env, "TIMEOUT"),
        cors=parse_cors(env.get("CORS")),
        stage=env.get("STAGE", "").strip() or None,
        memory_mb=(
            env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "").strip()
            or env.get("MEMORY", "").strip()
            or None
        ),
        http_format=_choice(env, "HYBRIDLESS_HTTP_FORMAT", "apigw-v1", HTTP_FORMATS),
        body_limit=_int(env, "HYBRIDLESS_BODY_LIMIT", 6291456),
        concurrency=_int(env, "HYBRIDLESS_CONCURRENCY", 64, minimum=1),
        schedule_input=env.get("HYBRIDLESS_SCHEDULE_INPUT"),
        function_name=function_name,
        function_version=env.get("AWS_LAMBDA_FUNCTION_VERSION", "").strip() or "$LATEST",
        region=(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1").strip(),
        runtime_api=env.get("AWS_LAMBDA_RUNTIME_API", "").strip() or None,
        log_group_name=env.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{function_name}"),
        log_stream_name=env.get("AWS_LAMBDA_LOG_STREAM_NAME") or _log_stream_name(),
        emulator_timeout_s=_optional_int(env, "AWS_LAMBDA_FUNCTION_TIMEOUT"),
    )
