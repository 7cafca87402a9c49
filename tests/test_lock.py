"""The lock files agree with pyproject.toml, and the check says when not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.check_lock import ROOT, problems

PYPROJECT = """\
[project]
name = "mailarchive"
dependencies = ["Django>=5.2,<5.3", "celery[redis]>=5.4"]

[project.optional-dependencies]
dev = ["pytest>=8"]
"""
APP_LOCK = """\
celery==5.5.3 \\
    --hash=sha256:00
    # via mailarchive (pyproject.toml)
django==5.2.8 \\
    --hash=sha256:00
    # via
    #   mailarchive (pyproject.toml)
    #   django-axes
redis==6.4.0 \\
    --hash=sha256:00
    # via celery
"""
DEV_LOCK = (
    APP_LOCK
    + "pytest==8.4.2 \\\n    --hash=sha256:00\n    # via mailarchive (pyproject.toml)\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "requirements.lock").write_text(APP_LOCK)
    (tmp_path / "requirements-dev.lock").write_text(DEV_LOCK)
    return tmp_path


def test_the_committed_locks_agree_with_pyproject(tmp_path):
    for name in ("pyproject.toml", "requirements.lock", "requirements-dev.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    assert problems(tmp_path) == []


def test_agreeing_locks_pass(project):
    assert problems(project) == []


def test_a_new_dependency_is_named(project):
    text = PYPROJECT.replace('"pytest>=8"', '"pytest>=8", "aiosmtpd>=1.4"')
    (project / "pyproject.toml").write_text(text)
    assert problems(project) == ["requirements-dev.lock: aiosmtpd>=1.4 is not pinned"]


def test_a_raised_lower_bound_is_named(project):
    text = PYPROJECT.replace("celery[redis]>=5.4", "celery[redis]>=5.6")
    (project / "pyproject.toml").write_text(text)
    assert problems(project) == [
        "requirements.lock: celery==5.5.3 does not satisfy celery[redis]>=5.6",
        "requirements-dev.lock: celery==5.5.3 does not satisfy celery[redis]>=5.6",
    ]


def test_a_removed_dependency_is_named(project):
    text = PYPROJECT.replace('"Django>=5.2,<5.3", ', "")
    (project / "pyproject.toml").write_text(text)
    found = problems(project)
    assert found == [
        "requirements.lock: django is pinned but pyproject.toml no longer names it",
        "requirements-dev.lock: django is pinned but pyproject.toml no longer names it",
    ]


def test_a_missing_lock_is_named(project):
    (project / "requirements-dev.lock").unlink()
    assert problems(project) == ["requirements-dev.lock is missing"]
