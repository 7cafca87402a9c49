"""The image holds everything the app needs, installed from the lock."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _copied() -> set[str]:
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copied.update(part.rstrip("/") for part in line.split()[1:-1])
    return copied


def test_every_app_of_the_settings_is_a_package_of_the_distribution():
    """An app missing from pyproject's packages works from a checkout (the
    editable install) and is missing from the image and any wheel."""
    from django.conf import settings

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["packages"]["find"]["include"]
    ours = {
        app.split(".")[0]
        for app in settings.INSTALLED_APPS
        if (ROOT / app.split(".")[0] / "__init__.py").exists()
    }
    assert ours
    missing = {
        app for app in ours if not any(fnmatch(app, pattern) for pattern in include)
    }
    assert missing == set()


def test_the_image_copies_every_package_of_the_app():
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["packages"]["find"]["include"]
    packages = {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if any(fnmatch(path.parent.name, pattern) for pattern in include)
    }
    assert packages
    assert packages <= _copied()


def test_the_image_installs_the_pinned_dependencies_with_hashes():
    text = (ROOT / "Dockerfile").read_text()
    assert "requirements.lock" in _copied()
    assert "--require-hashes -r requirements.lock" in text
    assert "--no-deps ." in text
