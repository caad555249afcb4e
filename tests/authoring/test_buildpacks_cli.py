"""``buildpacks``: where each buildpack came from, and broken plugins reported by name.

The plugins here are installed the way pip leaves them: a module plus a ``.dist-info``
directory with ``METADATA`` and ``entry_points.txt`` on the interpreter's path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lifecycle.hookspecs import ENTRY_POINT_GROUP
from lifecycle.testing import minimal_run_image
from tests.infra.cli import REPO_ROOT, CliRunner

BROKEN = "raise ImportError('this plugin is broken on purpose')\n"
OLD_API = """\
from lifecycle.hookspecs import BuildResult, DetectResult, hookimpl


class Old:
    id = "acme/old"
    version = "0.3.0"
    api = "0.0"

    def detect(self, ctx):
        return DetectResult.passes()

    def build(self, ctx):
        return BuildResult()


@hookimpl
def hybridless_buildpacks():
    return [Old()]
"""


def install(site: Path, distribution: str, version: str, module: str, source: str) -> None:
    """Write ``module`` and its distribution's metadata into ``site``, as pip would."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{module.removesuffix('_bp')} = {module}\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory of installed plugins: one that fails to import, one for an old API."""
    site = tmp_path / "site"
    install(site, "hybridless-broken", "0.0.1", "broken_bp", BROKEN)
    install(site, "hybridless-old", "0.3.0", "old_bp", OLD_API)
    return site


def with_site(site: Path, **extra: str) -> dict[str, str]:
    """Environment for the CLI with ``site`` on the path."""
    return {"PYTHONPATH": f"{site}:{REPO_ROOT}", **extra}


def listing(cli: CliRunner, site: Path, **extra: str) -> list[dict[str, Any]]:
    """``buildpacks --json`` with ``site`` installed."""
    result = cli("buildpacks", "--json", env=with_site(site, **extra))
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_json_names_distribution_and_version(cli: CliRunner, tmp_path: Path) -> None:
    rows = listing(cli, tmp_path / "empty")
    procfile = next(row for row in rows if row["id"] == "hybridless/procfile")
    assert procfile["distribution"] == "hybridless-lifecycle"
    assert procfile["distribution_version"]
    assert procfile["source"] == "entry point procfile = buildpacks.procfile"
    assert {"id", "version", "api", "source"} <= set(procfile)
    assert not any("error" in row for row in rows)


def test_broken_plugins_are_rows_with_an_error(cli: CliRunner, site: Path) -> None:
    rows = listing(cli, site)
    broken = [row for row in rows if row.get("error")]
    by_subject = {row["plugin"] or row["id"]: row for row in broken}
    assert set(by_subject) == {"broken", "acme/old"}
    assert by_subject["broken"]["distribution"] == "hybridless-broken"
    assert by_subject["broken"]["distribution_version"] == "0.0.1"
    assert by_subject["broken"]["source"] == "entry point broken = broken_bp"
    assert "failed to import: ImportError: this plugin is broken on purpose" in (
        by_subject["broken"]["error"])
    assert "targets buildpack API 0.0" in by_subject["acme/old"]["error"]
    assert {"hybridless/procfile", "hybridless/nodejs", "hybridless/python"} <= {
        row["id"] for row in rows if not row.get("error")}


def test_text_listing_reports_broken_plugins(cli: CliRunner, site: Path) -> None:
    result = cli("buildpacks", env=with_site(site))
    assert result.returncode == 0
    assert "broken: plugin 'broken' (broken_bp) failed to import" in result.stdout
    assert "hybridless/procfile" in result.stdout


def test_block_list_skips_importing_a_plugin(cli: CliRunner, site: Path) -> None:
    # Entry-point names: the plugins are not even imported.
    rows = listing(cli, site, HYBRIDLESS_BUILDPACKS_BLOCK="broken,old,hybridless/nodejs")
    assert not any(row.get("error") for row in rows)
    assert "hybridless/nodejs" not in {row["id"] for row in rows}
    allowed = listing(cli, site, HYBRIDLESS_BUILDPACKS="hybridless/procfile")
    assert [row["id"] for row in allowed if not row.get("error")] == ["hybridless/procfile"]


def test_builds_still_work_beside_a_broken_plugin(cli: CliRunner, site: Path,
                                                  tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text("web: echo hello\n")
    base = minimal_run_image(tmp_path / "base")
    result = cli("build", app, "--image", f"oci:{tmp_path / 'out'}:app", "--run-image", base,
                  "--json", env=with_site(site))
    assert result.returncode == 0, result.stderr
    assert "plugin 'broken' (broken_bp) failed to import" in result.stderr
    assert [p["name"] for p in json.loads(result.stdout)["processes"]] == ["web"]
