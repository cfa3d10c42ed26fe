"""The config: the example is valid; each kind of mistake gets a message naming file, line and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhian.cli import main
from zhian.config import load_config, resolve_secret
from zhian.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"


def test_example_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.community.target_level == "B"
    assert config.inventory.cameras[0].key_location
    assert config.thresholds.retention_days_key == 90


def edit(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    return next(
        i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line
    )


# (text to replace, replacement, expected message part, line marker or None)
CASES = [
    (
        "  target_level: B",
        "  target_level: D",
        "community.target_level: Input should be 'A', 'B' or 'C'",
        "target_level",
    ),
    (
        "  retention_days: 30 ",
        "  retention_dayz: 30 ",
        "thresholds.retention_dayz: Extra inputs are not permitted",
        "retention_dayz",
    ),
    (
        "password: env:ZHIAN_CAMERA_PASSWORD",
        "password: hunter2",
        "credentials.cameras.password: String should match pattern",
        "hunter2",
    ),
    (
        "credentials: cameras, recorded_by: nvr-01, channel: 1}",
        "credentials: cams, recorded_by: nvr-01, channel: 1}",
        "credentials 'cams' are not defined",
        None,
    ),
    (
        "recorded_by: nvr-01, channel: 1}",
        "recorded_by: nvr-09, channel: 1}",
        "recorded_by 'nvr-09' is no NVR",
        None,
    ),
    (
        "      broker: broker\n",
        "      broker: mosquitto\n",
        "broker 'mosquitto' is not in inventory.brokers",
        None,
    ),
    (
        "area: garage, credentials: cameras}",
        "area: roof, credentials: cameras}",
        "area 'roof' is not in areas",
        None,
    ),
    (
        "port: 502",
        "port: 70000",
        "inventory.panels.0.port: Input should be less than or equal to 65535",
        "port: 70000",
    ),
    ("  allow: []", "  allow: [burn_down]", "active.allow.0: Input should be", "burn_down"),
    ("  mode: inspection", "  mode: sometimes", "sampling.mode", "sometimes"),
]


@pytest.mark.parametrize(("old", "new", "message", "marker"), [c for c in CASES if c[2]])
def test_invalid_configs(tmp_path: Path, old: str, new: str, message: str, marker: str | None) -> None:
    path = edit(tmp_path, old, new)
    with pytest.raises(UsageError) as info:
        load_config(path)
    text = str(info.value)
    assert text.startswith(f"{path}:") and message in text, text
    if marker is not None:
        assert text.startswith(f"{path}:{line_of(path, marker)}:"), text


def test_duplicate_ids(tmp_path: Path) -> None:
    path = edit(tmp_path, "id: cam-garage-01", "id: cam-gate-01")
    with pytest.raises(UsageError, match="device id 'cam-gate-01' is used twice"):
        load_config(path)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = edit(tmp_path, "  name: 翠湖苑", "  name: [翠湖苑")
    with pytest.raises(UsageError, match=rf"{path}:\d+: not valid YAML"):
        load_config(path)


def test_secrets_resolve_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIAN_T", "s3cret")
    assert resolve_secret("env:ZHIAN_T", tmp_path) == "s3cret"
    (tmp_path / "pw.txt").write_text("fromfile\n", encoding="utf-8")
    assert resolve_secret("file:pw.txt", tmp_path) == "fromfile"
    monkeypatch.delenv("ZHIAN_T")
    with pytest.raises(UsageError, match="environment variable ZHIAN_T is not set"):
        resolve_secret("env:ZHIAN_T", tmp_path)
    with pytest.raises(UsageError, match=r"secret file:nope\.txt"):
        resolve_secret("file:nope.txt", tmp_path)


def test_cli_check_and_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["config", "check", str(EXAMPLE)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False and "inventory" in schema["properties"]
    bad = edit(tmp_path, "  target_level: B", "  target_level: D")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "target_level" in err
