"""The wheel: built from a copy of the source tree, it carries the policies (from the top-level
``policies/``) as package data, and an installed copy finds them as its default."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    # packages are listed by hand (find cannot map policies/); a new subpackage must be added.
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "solr_policy").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    config = _config()
    assert set(config["packages"]) == found | {"solr_policy.policies"}
    assert config["package-dir"] == {"solr_policy.policies": "policies"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """Built by setuptools' PEP 517 backend, as pip does, in a copy (the build writes build/
    and *.egg-info next to the sources). Returns the wheel and what the build printed."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("solr_policy", "policies"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; print(build_meta.build_wheel({str(out)!r}))"],
        cwd=src, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    name = done.stdout.strip().splitlines()[-1]
    return out / name, done.stdout + done.stderr


def test_wheel_carries_the_policies(wheel):
    path, _ = wheel
    shipped = {p.name: p.read_bytes() for p in (ROOT / "policies").glob("*.yaml")}
    assert shipped
    with zipfile.ZipFile(path) as archive:
        inside = {n.removeprefix("solr_policy/policies/"): archive.read(n) for n in archive.namelist() if n.startswith("solr_policy/policies/")}
        entry_points = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    assert inside == shipped
    assert "solr-policy = solr_policy.cli:main" in entry_points
    assert "License-Expression: Apache-2.0" in metadata


def test_wheel_builds_without_warnings(wheel):
    # A first `make demo` must be quiet: no deprecation notices from the build configuration.
    _, output = wheel
    assert "deprecat" not in output.lower() and "Warning:" not in output, output


def test_installed_wheel_finds_its_policies(wheel, tmp_path):
    path, _ = wheel
    site = tmp_path / "site"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(site)  # installing a pure-Python wheel is unpacking it
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "policies").mkdir(parents=True)  # a folder of the same name here changes nothing
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from solr_policy.policy import PolicySet, default_policy_dir;"
        "folder = default_policy_dir(); print(folder);"
        "print(' '.join(sorted(PolicySet.load_dir(folder).role_codes)))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(site)], cwd=elsewhere, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    folder, roles = done.stdout.splitlines()
    assert Path(folder) == (site / "solr_policy" / "policies").resolve()
    assert roles == "MDR SC"


def test_wheel_carries_the_postgresql_migrations(wheel):
    path, _ = wheel
    shipped = sorted(p.name for p in (ROOT / "solr_policy" / "store" / "migrations" / "postgres").glob("*.sql"))
    assert shipped
    with zipfile.ZipFile(path) as archive:
        inside = sorted(n.rsplit("/", 1)[1] for n in archive.namelist() if n.startswith("solr_policy/store/migrations/postgres/") and n.endswith(".sql"))
    assert inside == shipped
