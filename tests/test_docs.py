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


def _hookspecs() -> list:
    import inspect

    from soulsync_core import hooks

    return [fn for _, fn in inspect.getmembers(hooks, inspect.isfunction)
            if hasattr(fn, "soulsync_spec")]


def _signature(fn) -> str:
    import inspect

    signature = inspect.signature(fn)
    params = ", ".join(f"{name}: {param.annotation}" for name, param in signature.parameters.items())
    return f"{fn.__name__}({params}) -> {signature.return_annotation}"


def test_every_hook_is_documented_with_its_exact_signature():
    text = (ROOT / "docs" / "plugins.md").read_text()
    specs = _hookspecs()
    assert len(specs) == 5
    for fn in specs:
        assert f"### `{_signature(fn)}`" in text, _signature(fn)


def test_every_hook_has_a_test_named_after_it():
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    for fn in _hookspecs():
        assert f"def test_{fn.__name__}" in tests, fn.__name__
