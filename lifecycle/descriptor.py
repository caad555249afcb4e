"""The project descriptor (``project.toml``, docs/reference.md §3): parsing, validation, types.

Parsing uses tomli; validation uses the JSON schema shipped in ``lifecycle/schema``. jsonschema
is imported only when a descriptor's bytes have not been validated before, so a no-change
rebuild does not pay for it (the cache remembers the sha256 of descriptors that passed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lifecycle import safeio
from lifecycle.errors import DescriptorSchemaError, DescriptorSyntaxError
from lifecycle.image import tree

if TYPE_CHECKING:  # imported when a descriptor has the table: lifecycle.ecr loads boto3's kin
    from lifecycle.ecr.settings import EcrSettings

SCHEMA_PATH = Path(__file__).with_name("schema") / "project.schema.json"
EVENT_TYPES = ("httpd", "process", "scheduledTask", "launchableTask", "job", "lambdaContainer")
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_S = 30
DEFAULT_BODY_LIMIT = 6 * 1024 * 1024
DEFAULT_CONCURRENCY = 64
HttpFormat = Literal["apigw-v1", "apigw-v2", "alb", "alb-multi"]
"""The event shapes an ``httpd`` function can receive; the schema's ``http-format`` enum."""
DEFAULT_HTTP_FORMAT: HttpFormat = "apigw-v1"
# A descriptor is a few kilobytes; anything near this is not one.
MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Cors:
    """CORS settings of an httpd function; serialised into the ``CORS`` variable."""

    origin: str = "*"
    headers: tuple[str, ...] = ()
    allow_credentials: bool = False

    def to_env(self) -> str:
        """The JSON shape Hybridless shims read from ``CORS``."""
        return json.dumps(
            {"origin": self.origin, "headers": list(self.headers),
             "allowCredentials": self.allow_credentials},
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class DockerFileCopy:
    """One ``additional-docker-files`` entry: an app path copied into the build context."""

    source: str
    target: str


@dataclass(frozen=True)
class DockerfileSpec:
    """A function's custom Dockerfile settings (docs/reference.md §7)."""

    dockerfile: str
    additional_files: tuple[DockerFileCopy, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    container: bool = False
    """``runtime = "container"``: the Dockerfile is the whole build."""


@dataclass(frozen=True)
class Function:
    """One function of the project; each becomes one process in the image."""

    name: str
    handler: str | None = None
    command: tuple[str, ...] | None = None
    event: str = "httpd"
    runtime: str | None = None
    default: bool = False
    port: int = DEFAULT_PORT
    timeout: int = DEFAULT_TIMEOUT_S
    memory: int | None = None
    cpu: int | None = None
    http_format: HttpFormat = DEFAULT_HTTP_FORMAT
    health_check_route: str | None = None
    cors: Cors | None = None
    body_limit: int = DEFAULT_BODY_LIMIT
    concurrency: int = DEFAULT_CONCURRENCY
    schedule_input: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    dockerfile: DockerfileSpec | None = None

    @property
    def entrypoint(self) -> str:
        """The handler file without the function (``src/handler`` of ``src/handler.handler``)."""
        return (self.handler or "").rpartition(".")[0]

    @property
    def entrypoint_func(self) -> str:
        """The exported function name (split at the last dot, as Lambda does)."""
        return (self.handler or "").rpartition(".")[2]


@dataclass(frozen=True)
class GroupEntry:
    """One buildpack of an explicit ``[[io.buildpacks.group]]``."""

    id: str
    version: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class Descriptor:
    """The parsed, validated descriptor; ``path`` is None when the app has none."""

    path: Path | None = None
    id: str | None = None
    name: str | None = None
    version: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    group: tuple[GroupEntry, ...] = ()
    build_env: Mapping[str, str] = field(default_factory=dict)
    stack: str | None = None
    stage: str | None = None
    functions: tuple[Function, ...] = ()
    buildpack_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    ecr: EcrSettings | None = None
    """``[io.hybridless.ecr]``; ``None`` when the table is absent (the defaults apply)."""

    @property
    def project_id(self) -> str:
        """The identity baked into defaults such as the health route; never a host path."""
        return self.id or self.name or "app"

    def options_for(self, buildpack_id: str) -> Mapping[str, Any]:
        """The ``[io.hybridless.buildpacks."<id>"]`` table of one buildpack."""
        return self.buildpack_options.get(buildpack_id, {})

    @property
    def dockerfile(self) -> DockerfileSpec | None:
        """The project's custom Dockerfile, if a function names one (validation makes it one)."""
        for fn in self.functions:
            if fn.dockerfile is not None:
                return fn.dockerfile
        return None


def normalize_runtime(runtime: str | None) -> str | None:
    """Accept Lambda's ``nodejs20.x`` spelling as ``nodejs20``."""
    if runtime and runtime.endswith(".x"):
        return runtime[:-2]
    return runtime


def find(app_dir: Path, explicit: Path | None = None) -> Path | None:
    """The descriptor to use: ``--descriptor`` if given, else ``APP/project.toml`` if present."""
    if explicit is not None:
        return explicit
    candidate = app_dir / "project.toml"
    # Anything by that name counts (a FIFO, a link out of the app): load says why it is refused.
    return candidate if os.path.lexists(candidate) else None


def load(path: Path | None, *, validated_cache: Path | None = None,
         root: Path | None = None) -> Descriptor:
    """Read, validate and type a descriptor; ``None`` gives the empty descriptor.

    ``root`` (the app directory, for a descriptor found there) confines the read to it.
    """
    if path is None:
        return Descriptor()
    try:
        raw_bytes = safeio.read_bytes(path, root=root, limit=MAX_BYTES)
    except OSError as exc:
        raise DescriptorSyntaxError(
            f"failed to read descriptor {path}: {safeio.describe(exc)}",
            hint="pass a regular, readable file to --descriptor, or omit it",
        ) from exc
    data = parse_toml(path, raw_bytes)
    digest = hashlib.sha256(raw_bytes).hexdigest()
    marker = validated_cache / digest if validated_cache else None
    if marker is None or not marker.exists():
        validate(path, data)
        if marker is not None:
            _touch(marker)
    return from_mapping(path, data)


def parse_toml(path: Path, raw: bytes) -> dict[str, Any]:
    """Parse TOML, turning a syntax error into exit 10 with file and line."""
    import tomli

    try:
        return tomli.loads(raw.decode("utf-8"))
    except RecursionError as exc:  # tomli's own depth limits, or Python's
        raise DescriptorSyntaxError(
            f"failed to parse {path}: {exc}",
            hint="flatten the nested arrays, tables or dotted keys",
        ) from None
    except UnicodeDecodeError as exc:
        raise DescriptorSyntaxError(
            f"failed to parse {path}: not UTF-8 (byte {exc.start})",
            hint="save the descriptor as UTF-8",
        ) from exc
    except tomli.TOMLDecodeError as exc:
        raise DescriptorSyntaxError(
            f"failed to parse {path}: {exc}",
            hint="fix the TOML syntax at that line; see project.toml.example",
        ) from exc


def validate(path: Path, data: Mapping[str, Any]) -> None:
    """Check ``data`` against the schema; the first error becomes exit 11 naming the key."""
    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        errors = sorted(_validator(schema).iter_errors(data),
                        key=lambda e: (list(map(str, e.path)), e.message))
    except RecursionError:
        raise DescriptorSchemaError(
            f"{path}: values are nested too deeply to check",
            hint="flatten the nested arrays or tables") from None
    if errors:
        raise DescriptorSchemaError(describe_schema_error(path, errors[0], schema))
    _check_semantics(path, data)


def _validator(schema: Mapping[str, Any]) -> Any:
    """A Draft 2020-12 validator that reads the schema the way ECMA-262 and TOML mean it.

    Two differences from jsonschema's defaults: an ``integer`` is an int, never a float with
    no fraction (TOML's ``port = 8080.0`` is a float, and ``PORT=8080.0`` breaks the shims);
    and a pattern's final ``$`` is the end of the string, as in ECMA-262, where Python's ``$``
    also matches before a trailing newline (``name = "api\n"`` would pass).
    """
    import jsonschema
    from jsonschema import validators

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))

    def pattern(_validator: Any, regex: str, instance: Any, _schema: Any) -> Any:
        if isinstance(instance, str) and not re.search(ecma_pattern(regex), instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {regex!r}")

    strict = validators.extend(base, validators={"pattern": pattern}, type_checker=checker)
    return strict(schema)


def ecma_pattern(regex: str) -> str:
    """``regex`` for Python's ``re`` with ECMA-262's meaning of a final ``$``."""
    if regex.endswith("$") and not regex.endswith("\\$"):
        return regex[:-1] + r"\Z"
    return regex


def validate_options(path: Path | None, buildpack_id: str, options: Mapping[str, Any],
                     schema: Mapping[str, Any]) -> None:
    """Check one buildpack's ``[io.hybridless.buildpacks."<id>"]`` table against its schema."""
    try:
        errors = sorted(_validator(schema).iter_errors(dict(options)),
                        key=lambda e: (list(map(str, e.path)), e.message))
    except RecursionError:
        raise DescriptorSchemaError(
            f'{path or "project.toml"}: io.hybridless.buildpacks."{buildpack_id}" is nested '
            "too deeply to check") from None
    if errors:
        where = path or Path("project.toml")
        message = describe_schema_error(where, errors[0], schema,
                                        prefix=f'io.hybridless.buildpacks."{buildpack_id}"')
        raise DescriptorSchemaError(message, hint=f"see the documentation of {buildpack_id} "
                                                  "for its options")


def describe_schema_error(path: Path, error: Any, schema: Mapping[str, Any],
                          prefix: str = "") -> str:
    """Say which key is wrong, what value it had, and which values are valid."""
    where = ".".join(filter(None, [prefix, key_path(error.absolute_path)]))
    sub = error.schema
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(sub.get("properties", {})))
        valid = ", ".join(sorted(sub.get("properties", {})))
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        return f"{path}: unknown key '{key}'; valid keys here: {valid}"
    if error.validator == "enum":
        valid = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"{path}: {where} = {json.dumps(error.instance)} is not valid; valid values: {valid}"
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        key = missing[0] if missing else "?"
        return f"{path}: {where or 'the top level'} is missing the required key '{key}'"
    if error.validator == "pattern":
        return (f"{path}: {where} = {json.dumps(error.instance)} does not match the expected "
                f"form {_pattern_hint(error.absolute_path, error.validator_value)}")
    if error.validator == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return f"{path}: {where} = {json.dumps(error.instance)} must be of type {want}"
    if error.validator in ("minimum", "maximum"):
        return f"{path}: {where} = {error.instance}: {error.message}"
    if error.validator == "oneOf" and where.endswith(".command"):
        return (f"{path}: {where} = {json.dumps(error.instance)} must be a non-empty string "
                "or a non-empty array of strings")
    return f"{path}: {where}: {error.message}"


def key_path(parts: Any) -> str:
    """``['io', 'hybridless', 'functions', 0, 'event']`` → ``io.hybridless.functions[0].event``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _pattern_hint(parts: Any, pattern: str) -> str:
    last = list(parts)[-1] if list(parts) else ""
    hints = {
        "name": "lower-case letters, digits and '-', starting with a letter or digit",
        "handler": "'path/to/file.function', e.g. 'src/handler.handler'",
        "runtime": "nodejs18, nodejs20, nodejs22, nodejs24, python3.10 … python3.13 "
                   "(a trailing '.x' is accepted), or container",
        "health-check-route": "an absolute path starting with '/'",
        "dockerfile": "a relative path inside the app directory, e.g. 'Dockerfile'",
        "from": "a relative path inside the app directory, e.g. 'conf/nginx.conf'",
        "to": "a relative path inside the build context, e.g. 'nginx.conf'",
    }
    if "\\u0000" in pattern and str(last) not in hints:
        return "text without NUL characters"
    return hints.get(str(last), f"/{pattern}/")


def _check_semantics(path: Path, data: Mapping[str, Any]) -> None:
    """Rules JSON schema cannot say well: unique names, one default, handler or command,
    handlers inside the app, globs that compile, environments that ``exec`` accepts."""
    cnb = data.get("io", {}).get("buildpacks", {})
    for key in ("include", "exclude"):
        for index, pattern in enumerate(cnb.get(key, ())):
            problem = tree.pattern_problem(pattern)
            if problem is not None:
                raise DescriptorSchemaError(
                    f"{path}: io.buildpacks.{key}[{index}] = {json.dumps(pattern)} is not a "
                    f"valid pattern: {problem}")
    build_env = {e["name"]: e["value"] for e in cnb.get("build", {}).get("env", ())}
    _check_env_size(path, "io.buildpacks.build.env", build_env)
    hyb = data.get("io", {}).get("hybridless", {})
    functions = hyb.get("functions", [])
    seen: set[str] = set()
    defaults = []
    for index, fn in enumerate(functions):
        where = f"io.hybridless.functions[{index}]"
        handler = fn.get("handler")
        if handler is not None and not _inside_app(handler.rpartition(".")[0]):
            raise DescriptorSchemaError(
                f"{path}: {where}.handler = {json.dumps(handler)} must name a file inside the "
                "app: a relative path without '..'",
                hint="write it from the app root, e.g. 'src/handler.handler'")
        env = {k: _env_str(v) for k, v in fn.get("environment", {}).items()}
        if "stage" in hyb:
            env.setdefault("STAGE", hyb["stage"])
        schedule = fn.get("schedule-input")
        if schedule is not None:
            env["HYBRIDLESS_SCHEDULE_INPUT"] = (
                schedule if isinstance(schedule, str)
                else json.dumps(schedule, separators=(",", ":"), sort_keys=True))
        _check_env_size(path, f"{where}.environment", env)
        if fn["name"] in seen:
            raise DescriptorSchemaError(
                f"{path}: {where}.name = {json.dumps(fn['name'])} is used twice; "
                "function names must be unique")
        seen.add(fn["name"])
        if fn.get("default"):
            defaults.append(fn["name"])
        container = fn.get("runtime") == "container"
        if container and "dockerfile" not in fn:
            raise DescriptorSchemaError(
                f"{path}: {where} has runtime = \"container\" but no 'dockerfile'; "
                "give 'dockerfile = \"Dockerfile\"' (the Dockerfile does the whole build)")
        for key in ("additional-docker-files", "docker-build-args"):
            if key in fn and "dockerfile" not in fn:
                raise DescriptorSchemaError(
                    f"{path}: {where}.{key} is set but {where} has no 'dockerfile'; "
                    f"add 'dockerfile = \"Dockerfile\"' or remove '{key}'")
        _check_relative(path, f"{where}.dockerfile", fn.get("dockerfile"))
        for number, copy in enumerate(fn.get("additional-docker-files", ())):
            for key in ("from", "to"):
                _check_relative(path, f"{where}.additional-docker-files[{number}].{key}",
                                copy[key])
            _check_not_over_dockerfile(path, f"{where}.additional-docker-files[{number}].to",
                                       copy["to"], fn.get("dockerfile", ""))
        if "handler" not in fn and "command" not in fn and not container:
            raise DescriptorSchemaError(
                f"{path}: {where} has neither 'handler' nor 'command'; "
                "give 'handler = \"src/handler.handler\"' or 'command = \"./server\"'")
    if len(defaults) > 1:
        raise DescriptorSchemaError(
            f"{path}: io.hybridless.functions: more than one default function "
            f"({', '.join(defaults)}); mark at most one with 'default = true'")
    _check_one_dockerfile(path, functions)


_DOCKER_KEYS = ("dockerfile", "additional-docker-files", "docker-build-args")


def _check_one_dockerfile(path: Path, functions: Any) -> None:
    """One build makes one image, so functions naming a Dockerfile must all name the same."""
    first: tuple[int, Any] | None = None
    for index, fn in enumerate(functions):
        if "dockerfile" not in fn:
            continue
        settings = ({k: fn.get(k) for k in _DOCKER_KEYS}, fn.get("runtime") == "container")
        if first is None:
            first = (index, settings)
        elif settings != first[1]:
            raise DescriptorSchemaError(
                f"{path}: io.hybridless.functions[{index}] names another Dockerfile setup than "
                f"io.hybridless.functions[{first[0]}]; one build makes one image, so give the "
                "same dockerfile, additional-docker-files, docker-build-args and runtime, "
                "or build them as separate projects")


def _check_not_over_dockerfile(path: Path, where: str, target: str, dockerfile: str) -> None:
    """An additional file may not replace the Dockerfile we read to plan the build."""
    clean = "/".join(p for p in target.split("/") if p not in ("", "."))
    wanted = "/".join(p for p in dockerfile.split("/") if p not in ("", "."))
    if clean == wanted or wanted.startswith(clean + "/"):
        raise DescriptorSchemaError(
            f"{path}: {where} = {json.dumps(target)} would replace the Dockerfile "
            f"{json.dumps(dockerfile)} in the build context; copy it to another path")


def _check_relative(path: Path, where: str, value: str | None) -> None:
    """Refuse absolute paths and ``..`` segments: the Dockerfile context is the app directory."""
    if value is None:
        return
    parts = value.replace("\\", "/").split("/")
    if value.startswith("/") or ".." in parts or not value.strip("/"):
        raise DescriptorSchemaError(
            f"{path}: {where} = {json.dumps(value)} leaves the app directory; "
            "give a relative path without '..' inside the app directory")


# Linux refuses to exec with one "NAME=value" string over 32 pages (MAX_ARG_STRLEN), and with
# argv plus environment over a quarter of the stack limit (2 MiB by default). The run image
# and the shims add their own variables, so the project gets half of that.
MAX_ENV_ENTRY = 128 * 1024
MAX_ENV_TOTAL = 1024 * 1024


def _check_env_size(path: Path, where: str, env: Mapping[str, str]) -> None:
    total = 0
    for key, value in env.items():
        size = len(key.encode()) + 1 + len(value.encode("utf-8", "surrogatepass")) + 1
        if size > MAX_ENV_ENTRY:
            raise DescriptorSchemaError(
                f"{path}: {where}.{key} is {size} bytes; exec refuses an environment entry "
                f"over {MAX_ENV_ENTRY} bytes", hint="ship large values as a file in the app")
        total += size + 8  # the pointer each entry costs in envp
    if total > MAX_ENV_TOTAL:
        raise DescriptorSchemaError(
            f"{path}: {where} adds up to {total} bytes; keep a function's environment under "
            f"{MAX_ENV_TOTAL} bytes so that exec accepts it",
            hint="ship large values as a file in the app")


def _inside_app(file: str) -> bool:
    parts = file.replace("\\", "/").split("/")
    return bool(file) and not file.startswith(("/", "\\")) and ".." not in parts


def from_mapping(path: Path | None, data: Mapping[str, Any]) -> Descriptor:
    """Type a validated mapping; defaults follow docs/reference.md §3."""
    meta = data.get("_", {})
    cnb = data.get("io", {}).get("buildpacks", {})
    hyb = data.get("io", {}).get("hybridless", {})
    return Descriptor(
        path=path,
        id=meta.get("id"),
        name=meta.get("name"),
        version=meta.get("version"),
        include=tuple(cnb.get("include", ())),
        exclude=tuple(cnb.get("exclude", ())),
        group=tuple(GroupEntry(g["id"], g.get("version"), g.get("optional", False))
                    for g in cnb.get("group", ())),
        build_env={e["name"]: e["value"] for e in cnb.get("build", {}).get("env", ())},
        stack=hyb.get("stack"),
        stage=hyb.get("stage"),
        functions=tuple(_function(fn) for fn in hyb.get("functions", ())),
        buildpack_options=dict(hyb.get("buildpacks", {})),
        ecr=_ecr(path, hyb.get("ecr")),
    )


def _ecr(path: Path | None, table: Mapping[str, Any] | None) -> EcrSettings | None:
    """Read ``[io.hybridless.ecr]`` on every load: its checks live in lifecycle.ecr.settings."""
    if table is None:
        return None
    from lifecycle.ecr.settings import from_table

    try:
        return from_table(table)
    except DescriptorSchemaError as exc:
        raise DescriptorSchemaError(f"{path or 'project.toml'}: {exc.message}",
                                    hint=exc.hint) from exc


def _function(fn: Mapping[str, Any]) -> Function:
    cors = fn.get("cors")
    command = fn.get("command")
    schedule = fn.get("schedule-input")
    return Function(
        name=fn["name"],
        handler=fn.get("handler"),
        command=(("/bin/sh", "-c", command, "sh") if isinstance(command, str)
                 else tuple(command) if command else None),
        event=fn.get("event", "httpd" if fn.get("handler") else "process"),
        runtime=normalize_runtime(fn.get("runtime")),
        default=fn.get("default", False),
        port=fn.get("port", DEFAULT_PORT),
        timeout=fn.get("timeout", DEFAULT_TIMEOUT_S),
        memory=fn.get("memory"),
        cpu=fn.get("cpu"),
        http_format=fn.get("http-format", DEFAULT_HTTP_FORMAT),
        health_check_route=fn.get("health-check-route"),
        cors=Cors(cors.get("origin", "*"), tuple(cors.get("headers", ())),
                  cors.get("allow-credentials", False)) if cors is not None else None,
        body_limit=fn.get("body-limit", DEFAULT_BODY_LIMIT),
        concurrency=fn.get("concurrency", DEFAULT_CONCURRENCY),
        schedule_input=(schedule if isinstance(schedule, str) or schedule is None
                        else json.dumps(schedule, separators=(",", ":"), sort_keys=True)),
        environment={k: _env_str(v) for k, v in fn.get("environment", {}).items()},
        dockerfile=_dockerfile(fn),
    )


def _dockerfile(fn: Mapping[str, Any]) -> DockerfileSpec | None:
    if "dockerfile" not in fn:
        return None
    return DockerfileSpec(
        dockerfile=fn["dockerfile"],
        additional_files=tuple(DockerFileCopy(c["from"], c["to"])
                               for c in fn.get("additional-docker-files", ())),
        build_args={k: _env_str(v) for k, v in fn.get("docker-build-args", {}).items()},
        container=fn.get("runtime") == "container",
    )


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _touch(marker: Path) -> None:
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # the marker only saves time; failing to write it is harmless
