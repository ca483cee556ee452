"""The built wheel holds the hooks and templates packages, and nothing of the
top-level ``hooks`` import path."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for item in (
        "setup.cfg",
        "pyproject.toml",
        "README.md",
        "spamfilter_plugin",
        "hooks",
        "templates",
    ):
        path = ROOT / item
        if path.is_dir():
            shutil.copytree(
                path, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy2(path, src / item)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (whl,) = out.glob("spamfilter_plugin-*.whl")
    return zipfile.ZipFile(whl)


def test_wheel_contains_templates_and_hooks(wheel):
    names = set(wheel.namelist())
    for required in (
        "spamfilter_plugin/hooks/__init__.py",
        "spamfilter_plugin/templates/__init__.py",
        "spamfilter_plugin/templates/_macros.html.j2",
        "spamfilter_plugin/templates/style.css",
        "spamfilter_plugin/hookspecs.py",
        "spamfilter_plugin/py.typed",
        "spamfilter_plugin/systemd/spamfilter-worker.service",
        "spamfilter_plugin/cli/__init__.py",
        "spamfilter_plugin/cli/emit.py",
    ):
        assert required in names
    for src in (ROOT / "templates").rglob("*.j2"):
        assert f"spamfilter_plugin/templates/{src.relative_to(ROOT / 'templates')}" in names
    for src in (ROOT / "hooks").glob("*.py"):
        assert f"spamfilter_plugin/hooks/{src.name}" in names
    assert not any(n.startswith(("hooks/", "templates/", "tests/")) for n in names)


def test_wheel_contains_every_module_of_the_package(wheel):
    """setup.cfg lists the packages one by one: a new folder must not be left out."""
    names = set(wheel.namelist())
    for src in (ROOT / "spamfilter_plugin").rglob("*.py"):
        rel = src.relative_to(ROOT).as_posix()
        if "__pycache__" not in rel:
            assert rel in names, f"{rel} is not in the wheel; add its package to setup.cfg"


def test_wheel_metadata(wheel):
    meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    meta = wheel.read(meta_name).decode()
    for dep in ("pluggy", "requests>=2.32.4", "defusedxml", "Jinja2>=3.1.6", "marshmallow>=4.1.2"):
        assert f"Requires-Dist: {dep}" in meta
    assert "Requires-Python: >=3.11" in meta
    eps = wheel.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    assert "spamfilter = spamfilter_plugin.entry:main" in eps
    assert "[spamfilter_plugin.emulators]" in eps
    for src in (ROOT / "spamfilter_plugin" / "sandbox").glob("*.py"):
        text = src.read_text()
        if "(Emulator):" in text:  # every built-in emulator is registered by its vendor's name
            assert f"{src.stem} = spamfilter_plugin.sandbox.{src.stem}:" in eps


def test_python_m_pytest_from_the_checkout_finds_hooks_and_templates(tmp_path):
    """``python -m pytest`` puts the checkout first on sys.path, ahead of the install: the
    checkout's package must then find hooks/ and templates/ as the installed one does."""
    code = (
        "import spamfilter_plugin, spamfilter_plugin.hooks.spamport as h, "
        "spamfilter_plugin.templating as t; "
        "print(spamfilter_plugin.__file__); print(h.__file__); "
        "print('spamport/domain.html.j2' in t.environment().list_templates())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    package, hook, template_found = proc.stdout.split()
    assert Path(package) == ROOT / "spamfilter_plugin" / "__init__.py"
    assert Path(hook) == ROOT / "hooks" / "spamport.py"
    assert template_found == "True"


@pytest.mark.parametrize("bench", sorted(p.name for p in (ROOT / "bench").glob("*.py")))
def test_a_benchmark_needs_only_the_package(bench):
    """The benchmarks run where the package is installed without its test extras: a module
    of theirs that needed pytest (or anything else only the tests install) fails here."""
    blocked = (
        "import sys\n"
        "for name in ('pytest', '_pytest', 'playwright'):\n"
        "    sys.modules[name] = None\n"
    )
    path = ROOT / "bench" / bench
    load = (
        "import importlib.util\n"
        f"sys.path.insert(0, {str(path.parent)!r})\n"
        f"spec = importlib.util.spec_from_file_location('bench_module', {str(path)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocked + load], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
