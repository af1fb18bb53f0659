"""The README's commands, .ci/run, pyproject.toml and environment.yml stay consistent."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_the_two_commands():
    main, tests = _readme_commands()[:2]
    assert (
        "pip install -e ." in main
        and "nasviz search pc-darts --dataset digits --preset quick" in main
    )
    assert 'pip install -e ".[test]"' in tests and "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
    test_command = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
    assert any("apt-get install" in line and "graphviz" in line for line in ci)


def _pyproject_deps() -> set[str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    return set(project["dependencies"]) | set(project["optional-dependencies"]["test"])


def test_environment_yml_mirrors_pyproject():
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    pip_deps = set(
        re.findall(r"^\s+- ([A-Za-z][\w.-]*[<>=!~][^\s#]*)\s*$", pip_section, flags=re.M)
    )
    assert pip_deps == _pyproject_deps()
    assert re.search(r"^\s+- graphviz\s", text, flags=re.M)  # the dot binary from conda-forge
    assert "conda-forge" in text


def test_core_imports_without_viz_libraries():
    """The GPU machine has no graphviz/ipywidgets: the core and the CLI must not import them."""
    import subprocess

    code = (
        "import sys, nasviz.cli, nasviz.search, nasviz.search.darts, nasviz.search.pcdarts, nasviz.train, "
        "nasviz.models, nasviz.data, nasviz.history, nasviz.viz.evolution, nasviz.viz.cells, nasviz.viz.live\n"
        "bad = [m for m in ('graphviz', 'ipywidgets', 'matplotlib', 'sklearn', 'torchvision') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
