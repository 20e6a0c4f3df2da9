"""YAML configs with overrides: typos are errors, overrides apply, errors name the file and field."""

from __future__ import annotations

import pytest

from ccai.config import ConfigError, StageConfig, apply_overrides, load_config


class Demo(StageConfig):
    lr: float = 1e-4
    steps: int = 10
    name: str = "x"


def test_defaults_without_file() -> None:
    assert load_config(Demo).steps == 10


def test_file_then_overrides(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.5\nsteps: 3\n")
    cfg = load_config(Demo, path, ["steps=7", "name=hello world"])
    assert (cfg.lr, cfg.steps, cfg.name) == (0.5, 7, "hello world")


def test_nested_override_creates_sections() -> None:
    assert apply_overrides({}, ["a.b.c=1"]) == {"a": {"b": {"c": 1}}}


def test_unknown_key_is_an_error_naming_file_and_field(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("stpes: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: stpes"):
        load_config(Demo, path)


def test_wrong_type_names_field() -> None:
    with pytest.raises(ConfigError, match="steps"):
        load_config(Demo, None, ["steps=many"])


def test_bad_yaml_names_line(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1\nsteps: [1,\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(Demo, path)


def test_override_without_equals() -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(Demo, None, ["steps"])


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(Demo, tmp_path / "nope.yaml")
