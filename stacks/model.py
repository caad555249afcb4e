"""A stack definition (CONTRACT §6): typed, validated values read from one TOML file.

Validation is by hand rather than by JSON schema: the file is small, and each message can
name the file, the key and the valid choices. Unknown keys are errors, so a typo such as
``packges`` is caught instead of silently building a stack without packages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from lifecycle.errors import DescriptorSchemaError, DescriptorSyntaxError
from stacks.runtimes import Runtime, RuntimeRange, parse_range

STACK_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # Debian policy §5.6.1
SUITE = re.compile(r"^[a-z][a-z0-9-]*$")
PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"

_TOP_KEYS = ("id", "description", "platform", "user", "runtimes", "provides",
             "build-image", "run-image")
_USER_KEYS = ("name", "uid", "gid")
_IMAGE_KEYS = ("recipe", "reference")
_RECIPE_KEYS = ("suite", "packages", "mirror", "security-mirror")


@dataclass(frozen=True)
class User:
    """The non-root user the run image's processes run as."""

    name: str
    uid: int
    gid: int

    @property
    def spec(self) -> str:
        """The image config's ``User`` value: numeric, so it works without a passwd lookup."""
        return f"{self.uid}:{self.gid}"


@dataclass(frozen=True)
class Recipe:
    """A Debian image made by mmdebstrap from a suite, its updates and its security fixes."""

    suite: str
    packages: tuple[str, ...]
    mirror: str = DEFAULT_MIRROR
    security_mirror: str = DEFAULT_SECURITY_MIRROR


@dataclass(frozen=True)
class ImageSpec:
    """A stack's build or run image: exactly one of a recipe and a reference."""

    recipe: Recipe | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Stack:
    """One stack: what it is for, who runs in it, and its two images."""

    id: str
    description: str
    platform: str
    user: User
    runtimes: tuple[RuntimeRange, ...]
    provides: tuple[tuple[str, str], ...]
    build_image: ImageSpec
    run_image: ImageSpec
    source: Path
    """The TOML file this stack was read from."""

    def serves(self, runtime: Runtime) -> bool:
        """Whether buildpacks may build ``runtime`` on this stack."""
        return any(entry.serves(runtime) for entry in self.runtimes)

    @property
    def provided(self) -> dict[str, str]:
        """What the run image already has, e.g. ``{"nodejs": "22"}``."""
        return dict(self.provides)


def load_file(path: Path) -> Stack:
    """Read and validate one stack file."""
    import tomli

    try:
        data = tomli.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DescriptorSyntaxError(
            f"failed to read stack file {path}: not UTF-8 (byte {exc.start})",
            hint="save the stack file as UTF-8",
        ) from exc
    except tomli.TOMLDecodeError as exc:
        raise DescriptorSyntaxError(
            f"failed to read stack file {path}: {exc}", hint="fix the TOML syntax at that line"
        ) from exc
    return from_mapping(path, data)


def from_mapping(path: Path, data: Mapping[str, Any]) -> Stack:
    """Validate a parsed stack file; every error names ``path`` and the key."""
    check = _Checker(path)
    check.keys("", data, _TOP_KEYS, required=tuple(k for k in _TOP_KEYS if k != "provides"))
    stack_id = check.pattern("id", data["id"], STACK_ID, "lowercase letters, digits, . and -")
    if path.suffix == ".toml" and path.stem != stack_id:
        check.fail("id", f"is {stack_id!r} but the file is named {path.name}",
                   f"name the file {stack_id}.toml")
    description = check.string("description", data["description"])
    platform = check.pattern("platform", data["platform"], PLATFORM, "os/arch, e.g. linux/amd64")
    user = _user(check, data["user"])
    runtimes = _runtimes(check, data["runtimes"])
    provides = _provides(check, data.get("provides", {}))
    return Stack(
        id=stack_id,
        description=description,
        platform=platform,
        user=user,
        runtimes=runtimes,
        provides=provides,
        build_image=_image(check, "build-image", data["build-image"]),
        run_image=_image(check, "run-image", data["run-image"]),
        source=path,
    )


def _user(check: _Checker, value: Any) -> User:
    table = check.table("user", value)
    check.keys("user", table, _USER_KEYS, required=_USER_KEYS)
    name = check.pattern("user.name", table["name"], USER_NAME, "a POSIX user name")
    uid = check.integer("user.uid", table["uid"])
    gid = check.integer("user.gid", table["gid"])
    if uid == 0 or gid == 0 or name == "root":
        check.fail("user", "is root", "a stack's user must not be root: give a uid and gid >= 1")
    return User(name, uid, gid)


def _runtimes(check: _Checker, value: Any) -> tuple[RuntimeRange, ...]:
    if not isinstance(value, list) or not value:
        check.fail("runtimes", "must be a non-empty list", 'e.g. runtimes = ["nodejs18-24"]')
    ranges = []
    for index, item in enumerate(value):
        text = check.string(f"runtimes[{index}]", item)
        try:
            ranges.append(parse_range(text))
        except ValueError as error:
            check.fail(f"runtimes[{index}]", str(error), "see the range syntax in docs/stacks.md")
    return tuple(ranges)


def _provides(check: _Checker, value: Any) -> tuple[tuple[str, str], ...]:
    table = check.table("provides", value)
    return tuple(
        (check.pattern("provides", name, SUITE, "a runtime family such as nodejs or python"),
         check.string(f"provides.{name}", version))
        for name, version in sorted(table.items())
    )


def _image(check: _Checker, key: str, value: Any) -> ImageSpec:
    table = check.table(key, value)
    check.keys(key, table, _IMAGE_KEYS)
    if ("recipe" in table) == ("reference" in table):
        check.fail(key, "must have exactly one of recipe and reference",
                   'e.g. recipe = { suite = "bookworm", packages = [...] } or '
                   'reference = "docker://docker.io/library/node:22-bookworm-slim"')
    if "reference" in table:
        return ImageSpec(reference=_reference(check, f"{key}.reference", table["reference"]))
    recipe = check.table(f"{key}.recipe", table["recipe"])
    where = f"{key}.recipe"
    check.keys(where, recipe, _RECIPE_KEYS, required=("suite", "packages"))
    suite = check.pattern(f"{where}.suite", recipe["suite"], SUITE, "a Debian suite, e.g. bookworm")
    packages = recipe["packages"]
    if not isinstance(packages, list):
        check.fail(f"{where}.packages", "must be a list of Debian package names", None)
    names = tuple(
        check.pattern(f"{where}.packages[{i}]", p, PACKAGE, "a Debian package name")
        for i, p in enumerate(packages)
    )
    mirror = check.url(f"{where}.mirror", recipe.get("mirror", DEFAULT_MIRROR))
    security = check.url(f"{where}.security-mirror",
                         recipe.get("security-mirror", DEFAULT_SECURITY_MIRROR))
    return ImageSpec(recipe=Recipe(suite, tuple(sorted(set(names))), mirror, security))


def _reference(check: _Checker, key: str, value: Any) -> str:
    from lifecycle.errors import InvalidReference
    from lifecycle.image.reference import parse

    text = check.string(key, value)
    try:
        parse(text)
    except InvalidReference as error:
        check.fail(key, f"is not an image reference: {error.message}", error.hint)
    return text


class _Checker:
    """Type checks that raise one error naming the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, hint: str | None) -> NoReturn:
        where = key or "the top level"
        raise DescriptorSchemaError(f"invalid stack file {self.path}: {where} {problem}",
                                    hint=hint)

    def keys(self, key: str, table: Mapping[str, Any], valid: tuple[str, ...],
             required: tuple[str, ...] = ()) -> None:
        unknown = sorted(set(table) - set(valid))
        if unknown:
            name = f"{key}.{unknown[0]}" if key else unknown[0]
            self.fail(name, "is not a known key", f"valid keys: {', '.join(valid)}")
        for needed in required:
            if needed not in table:
                self.fail(f"{key}.{needed}" if key else needed, "is missing", "it is required")

    def table(self, key: str, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(key, f"must be a table, not {type(value).__name__}", None)
        return value

    def string(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, not {value!r}", None)
        return str(value)

    def integer(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
            self.fail(key, f"must be an integer from 0 to 2147483647, not {value!r}", None)
        return int(value)

    def pattern(self, key: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
        text = self.string(key, value)
        if not pattern.match(text):
            self.fail(key, f"is {text!r}, not {what}", None)
        return text

    def url(self, key: str, value: Any) -> str:
        text = self.string(key, value)
        if not re.match(r"^https?://[^\s'\"]+$", text):
            self.fail(key, f"is {text!r}, not an http(s) URL", None)
        return text.rstrip("/")
