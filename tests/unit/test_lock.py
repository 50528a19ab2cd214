"""The lock files agree with pyproject.toml, pin only hashed files, and stay past known CVEs.

``make setup`` installs ``requirements.lock`` with ``--require-hashes`` and the
project with ``--no-deps``, so a requirement that pyproject.toml gains without
``make lock`` would be missing at run time: these tests fail first. The image
installs ``requirements-runtime.lock``, which must pin the same versions.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"

#: Oldest release without a known advisory, per package (docs/security.md).
#: Raising a floor here without raising it in pyproject.toml fails the test.
SAFE_FLOORS = {
    "aiohttp": "3.14.3",  # CVE-2026-59881, CVE-2026-69243 (websocket, smuggling) and older
    "requests": "2.33.0",  # CVE-2026-25645, CVE-2024-47081, CVE-2024-35195
    "urllib3": "2.7.0",  # CVE-2026-44431, CVE-2026-44432, CVE-2026-21441
    "tornado": "6.5.9",  # Flower's server: CVE-2026-49853..49855 and later fixes
}

#: Python versions the project supports; every pin must install on each.
PYTHONS = ("3.11", "3.12", "3.13")


def pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirements(extras: bool) -> list[Requirement]:
    project = pyproject()["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    if extras:
        for group in project.get("optional-dependencies", {}).values():
            reqs += [Requirement(r) for r in group]
    return reqs


@cache
def pins(path: Path) -> dict[str, list[tuple[Version, str, int]]]:
    """name -> [(version, marker, number of hashes)] (uv forks a name per Python range)."""
    out: dict[str, list[tuple[Version, str, int]]] = {}
    text = path.read_text()
    # one requirement per logical line: "name==1.0 ; marker \\\n    --hash=sha256:..."
    for block in re.split(r"\n(?=\S)", text):
        line = block.split("\n", 1)[0].rstrip(" \\")
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)\s*(?:;\s*(.+))?", line)
        assert m, f"{path.name}: not an exact pin: {line!r}"
        hashes = len(re.findall(r"--hash=sha256:[0-9a-f]{64}", block))
        name = canonicalize_name(m.group(1))
        out.setdefault(name, []).append((Version(m.group(2)), m.group(3) or "", hashes))
    return out


def pinned_for(path: Path, name: str, python: str) -> Version | None:
    """The version the lock installs for ``name`` on ``python`` (Linux), if any."""
    env = {
        **default_environment(),
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
    }
    for version, marker, _ in pins(path).get(canonicalize_name(name), []):
        if not marker or Requirement(f"x; {marker}").marker.evaluate(env):  # type: ignore[union-attr]
            return version
    return None


@pytest.mark.parametrize(("lock", "extras"), [(LOCK, True), (RUNTIME_LOCK, False)])
@pytest.mark.parametrize("python", PYTHONS)
def test_every_requirement_is_pinned_within_its_specifier(
    lock: Path, extras: bool, python: str
) -> None:
    problems = []
    for req in requirements(extras):
        if req.marker and not req.marker.evaluate({"python_version": python, "extra": ""}):
            continue
        version = pinned_for(lock, req.name, python)
        if version is None:
            problems.append(f"{req.name} is not in {lock.name}")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} does not satisfy {req}")
    assert not problems, "run `make lock`:\n" + "\n".join(problems)


@pytest.mark.parametrize("lock", [LOCK, RUNTIME_LOCK])
def test_every_pin_is_exact_and_hashed(lock: Path) -> None:
    assert lock.is_file(), f"{lock.name} is missing: run `make lock`"
    found = pins(lock)
    assert found, f"{lock.name} pins nothing"
    unhashed = [name for name, rows in found.items() for _, _, n in rows if n == 0]
    assert not unhashed, f"{lock.name}: pins without --hash: {unhashed}"
    assert "make lock" in lock.read_text().split("\n", 3)[1], "regenerate it with `make lock`"


def test_runtime_lock_pins_the_same_versions_without_dev_tools() -> None:
    full, runtime = pins(LOCK), pins(RUNTIME_LOCK)
    for name, rows in runtime.items():
        assert name in full, f"{name} is in the runtime lock only"
        assert {v for v, _, _ in rows} <= {v for v, _, _ in full[name]}, name
    dev_tools = {"pytest", "mypy", "ruff", "hypothesis", "uv"} & set(runtime)
    assert not dev_tools, f"the image's lock must not carry dev tools: {dev_tools}"


@pytest.mark.parametrize(("name", "floor"), sorted(SAFE_FLOORS.items()))
def test_floors_are_past_known_advisories(name: str, floor: str) -> None:
    declared = [r for r in requirements(False) if canonicalize_name(r.name) == name]
    assert declared, f"declare {name}>={floor} in pyproject.toml (a transitive pin can drift)"
    for req in declared:
        assert not req.specifier.contains(_below(floor)), f"{req} admits releases below {floor}"
    for python in PYTHONS:
        version = pinned_for(LOCK, name, python)
        assert version is not None and version >= Version(floor), f"{name}=={version}"


def _below(version: str) -> Version:
    """A release just under ``version`` (what a too-low floor would still admit)."""
    parts = list(Version(version).release)
    i = max(i for i, p in enumerate(parts) if p > 0)  # 2.7.0 -> 2.6.x, 6.5.9 -> 6.5.8
    parts[i] -= 1
    return Version(".".join(str(p) for p in parts[: i + 1]) + (".999" if i < 2 else ""))


def test_setup_installs_from_the_lock_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*--require-hashes -r \$\(LOCK\)", makefile)
    assert re.search(r"pip install .*--no-deps -e \.", makefile)
    assert re.search(r"^lock:", makefile, re.M)
    docker = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements-runtime.lock" in docker
    build = pyproject()["build-system"]["requires"]
    assert any(Requirement(r).name == "setuptools" for r in build)
