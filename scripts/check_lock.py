"""Fails when pyproject.toml and the lock files disagree; `make lock` fixes it.

``requirements.lock`` pins the application's dependencies, and
``requirements-dev.lock`` those plus the ``dev`` extra, with hashes. The
locks agree with pyproject.toml when every dependency it names is pinned at a
version its specifier allows, and the lock holds no direct dependency that
pyproject.toml no longer names (the resolver marks direct ones
``# via mailarchive (pyproject.toml)``). Reads files only; no network.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {"requirements.lock": (), "requirements-dev.lock": ("dev",)}
DIRECT = "mailarchive (pyproject.toml)"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def wanted(pyproject: dict, extras: tuple[str, ...]) -> list[Requirement]:
    """The requirements pyproject.toml gives for the app with ``extras``."""
    project = pyproject["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def pinned(text: str) -> tuple[dict[str, Version], set[str]]:
    """Each pinned package's version, and the names marked as direct."""
    versions: dict[str, Version] = {}
    direct: set[str] = set()
    current = ""
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            versions[current] = Version(match[2])
        elif current and line.strip().lstrip("#").strip() in (
            f"via {DIRECT}",
            DIRECT,
        ):
            direct.add(current)
    return versions, direct


def problems(root: Path = ROOT) -> list[str]:
    """Every disagreement between pyproject.toml and the locks, in words."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    found = []
    for name, extras in LOCKS.items():
        path = root / name
        if not path.is_file():
            found.append(f"{name} is missing")
            continue
        try:
            requirements = wanted(pyproject, extras)
        except InvalidRequirement as error:
            found.append(f"pyproject.toml: {error}")
            continue
        versions, direct = pinned(path.read_text())
        named = set()
        for requirement in requirements:
            if requirement.marker is not None and not requirement.marker.evaluate(
                {"extra": ""}
            ):
                continue
            key = canonicalize_name(requirement.name)
            named.add(key)
            version = versions.get(key)
            if version is None:
                found.append(f"{name}: {requirement} is not pinned")
            elif not requirement.specifier.contains(version, prereleases=True):
                found.append(f"{name}: {key}=={version} does not satisfy {requirement}")
        for key in sorted(direct - named):
            found.append(
                f"{name}: {key} is pinned but pyproject.toml no longer names it"
            )
    return found


def main() -> int:
    found = problems()
    for problem in found:
        sys.stderr.write(f"check-lock: {problem}\n")
    if found:
        sys.stderr.write(
            "check-lock: pyproject.toml and the lock files disagree; run `make lock`\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
