"""The documentation names every setting and its environment variable."""

from __future__ import annotations

from pathlib import Path

from soulsync_core.config import core_schema

ROOT = Path(__file__).resolve().parent.parent


def test_every_core_setting_is_documented():
    text = (ROOT / "docs" / "settings.md").read_text()
    schema = core_schema()
    for key in schema.keys():
        assert f"`{key}`" in text, key
        assert f"`{schema[key].env_var}`" in text, key


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv")]
    assert len(commands) == 2
    serve, test = commands
    assert serve.endswith("soulsync serve")
    assert test in (ROOT / ".ci" / "run").read_text()
