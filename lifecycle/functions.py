"""The Hybridless environment (docs/reference.md §4): what each function's process defaults to.

Runtime buildpacks call :func:`hybridless_env` so every language gets the same variables with
the same defaults; the launcher applies them only where the environment does not set them.
"""

from __future__ import annotations

import uuid

from lifecycle.descriptor import Descriptor, Function


def health_route(project_id: str, function_name: str) -> str:
    """Hybridless's ``/healthCheck/<uuid>``, made stable: uuid5 of project id and function."""
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"hybridless:{project_id}")
    return f"/healthCheck/{uuid.uuid5(namespace, function_name)}"


def hybridless_env(fn: Function, descriptor: Descriptor, *, language: str | None = None
                   ) -> dict[str, str]:
    """The defaults of one function's process, as strings, in a stable order."""
    env: dict[str, str] = {"HYBRIDLESS_RUNTIME": "true", "HYBRIDLESS_EVENT_TYPE": fn.event}
    if fn.handler:
        env["ENTRYPOINT"] = fn.entrypoint
        env["ENTRYPOINT_FUNC"] = fn.entrypoint_func
    env["PORT"] = str(fn.port)
    env["TIMEOUT"] = str(fn.timeout * 1000)
    if fn.event == "httpd":
        env["HEALTH_ROUTE"] = fn.health_check_route or health_route(descriptor.project_id,
                                                                    fn.name)
        env["HYBRIDLESS_HTTP_FORMAT"] = fn.http_format
        env["HYBRIDLESS_BODY_LIMIT"] = str(fn.body_limit)
        if fn.cors is not None:
            env["CORS"] = fn.cors.to_env()
    env["HYBRIDLESS_CONCURRENCY"] = str(fn.concurrency)
    if fn.event == "scheduledTask":
        env["HYBRIDLESS_SCHEDULE_INPUT"] = fn.schedule_input or "{}"
    if descriptor.stage is not None:
        env["STAGE"] = descriptor.stage
    if fn.cpu is not None:
        env["CPU"] = str(fn.cpu)
    if fn.memory is not None:
        env["MEMORY"] = str(fn.memory)
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(fn.memory)
    env["AWS_LAMBDA_FUNCTION_NAME"] = fn.name
    if language == "nodejs":
        env["AWS_NODEJS_CONNECTION_REUSE_ENABLED"] = "1"
    env.update(fn.environment)
    return env
