"""The install files agree with each other and with CI."""

import tomllib

import yaml

from .conftest import REPO


def test_environment_yml_carries_the_pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pins |= set(extra)
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip_section) == pins
    assert "python=3.11" in env["dependencies"]
    assert all("==" in p for p in pins), "every dependency is pinned exactly"


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in (REPO / "README.md").read_text()
