"""The config: the example is valid; each kind of mistake gets a message naming file, line and key,
and `config check` finds everything a run would meet before it touches the site."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.tls import make_site_tls
from zhian.cli import main
from zhian.config import Config, resolve_secret
from zhian.configcheck import MAX_BYTES, check_config
from zhian.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"


def load_config(path: Path) -> Config:
    return check_config(path, secrets=False).config


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
    assert main(["config", "check", "--no-secrets", str(EXAMPLE)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False and "inventory" in schema["properties"]
    bad = edit(tmp_path, "  target_level: B", "  target_level: D")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "target_level" in err


# -- config check: the whole file, every problem on its own line ------------------------------------------
SITE = """\
version: 1
community: {name: t}
areas:
  - {id: a, kind: perimeter}
credentials:
  cams: {username: u, password: env:ZHIAN_TEST_PW}
  panel: {username: u, password: file:pw.txt}
inventory:
  cameras:
    - {id: cam-1, host: 10.0.0.1, port: 80, area: a, credentials: cams}
    - {id: cam-2, host: 10.0.0.2, port: 80, area: a, credentials: cams}
  doors:
    - {id: door-1, host: 10.0.1.1, port: 80, area: a, door: "1"}
    - {id: door-2, host: 10.0.1.1, port: 80, area: a, door: "2"}
  panels:
    - {id: panel-1, host: 10.0.2.1, area: a}
"""
PANEL_MAP = (ROOT / "collectors" / "modbus" / "profiles" / "generic-fire-panel.yaml").read_text(
    encoding="utf-8"
)


def write_site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "pw.txt").write_text("x\n", encoding="utf-8")
    (tmp_path / "maps").mkdir(exist_ok=True)
    (tmp_path / "maps" / "acme.yaml").write_text(PANEL_MAP.replace("name: generic-fire-panel", "name: acme"))
    (tmp_path / "maps" / "broken.yaml").write_text(PANEL_MAP.replace("max_zones:", "max_zonez:"))
    (tmp_path / "not-pem.crt").write_text("hello\n", encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, secrets: bool = True) -> list[str]:
    path = write_site(tmp_path, text)
    with pytest.raises(UsageError) as info:
        check_config(path, secrets=secrets)
    return [line.removeprefix(f"{path}:") for line in str(info.value).splitlines()]


def test_a_good_site_passes_and_its_paths_are_the_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIAN_TEST_PW", "pw")
    make_site_tls(tmp_path / "tls", "t", ["127.0.0.1"])
    text = SITE.replace("version: 1\n", "version: 1\nca_file: tls/ca.pem\n").replace(
        "{id: panel-1, host: 10.0.2.1, area: a}",
        "{id: panel-1, host: 10.0.2.1, area: a, profile_file: maps/acme.yaml}",
    )
    checked = check_config(write_site(tmp_path, text))
    assert checked.config.ca_file == tmp_path.resolve() / "tls" / "ca.pem"
    assert checked.base == tmp_path.resolve()
    assert checked.config.inventory.panels[0].profile_file == Path("maps/acme.yaml")


# (edit of SITE: old, new) -> the exact lines of the check, without the file name
CHECKS: list[tuple[str, str, list[str]]] = [
    (
        "  cameras:\n",
        "  cameras:\n    - {id: cam-1, host: 10.0.0.9, port: 80, area: a}\n",
        ["11: inventory.cameras.1.id: device id 'cam-1' is used twice (line 10)"],
    ),
    (
        "host: 10.0.0.2, port: 80",
        "host: 10.0.0.1, port: 80",
        ["11: inventory.cameras.1.host: 10.0.0.1:80 is also the address of 'cam-1' (line 10)"],
    ),
    (
        'door: "2"',
        'door: "1"',
        ["14: inventory.doors.1.host: 10.0.1.1:80 is also the address of 'door-1' (line 13)"],
    ),
    (
        "  cams: {username: u, password: env:ZHIAN_TEST_PW}\n",
        "  cams: {username: u, password: env:ZHIAN_TEST_PW, username: v}\n",
        ["6: credentials.cams.username: key written twice in one mapping (first on line 6)"],
    ),
    (
        "community: {name: t}\n",
        "community: {name: t}\ncommunity: {name: u}\n",
        ["3: community: key written twice in one mapping (first on line 2)"],
    ),
    (
        "version: 1\n",
        "version: 1\nca_file: missing.pem\n",
        ["2: ca_file: {tmp}/missing.pem: no such file"],
    ),
    (
        "version: 1\n",
        "version: 1\nca_file: maps\n",
        ["2: ca_file: {tmp}/maps is a directory, not a PEM file"],
    ),
    (
        "version: 1\n",
        "version: 1\nca_file: not-pem.crt\n",
        ["2: ca_file: {tmp}/not-pem.crt holds no PEM certificate (NO_CERTIFICATE_OR_CRL_FOUND)"],
    ),
    (
        "password: file:pw.txt",
        "password: file:nope.txt",
        ["7: credentials.panel.password: secret file:nope.txt: No such file or directory"],
    ),
    (
        "{id: panel-1, host: 10.0.2.1, area: a}",
        "{id: panel-1, host: 10.0.2.1, area: a, profile: acme-panel}",
        [
            "16: inventory.panels.0.profile: no profile 'acme-panel' shipped (shipped: gateway-fire-panel, "
            "generic-fire-panel); a site's own map goes in profile_file:"
        ],
    ),
    (
        "{id: panel-1, host: 10.0.2.1, area: a}",
        "{id: panel-1, host: 10.0.2.1, area: a, profile_file: maps/broken.yaml}",
        ["16: inventory.panels.0.profile_file: {tmp}/maps/broken.yaml: max_zones: Field required"],
    ),
    (
        "{id: panel-1, host: 10.0.2.1, area: a}",
        "{id: panel-1, host: 10.0.2.1, area: a, profile_file: maps/none.yaml}",
        ["16: inventory.panels.0.profile_file: {tmp}/maps/none.yaml: No such file or directory"],
    ),
    (
        "inventory:\n",
        "monitor:\n  schedule: {retention: 60, retension: 600}\ninventory:\n",
        ["9: monitor.schedule.retension: no probe 'retension' in the rules (did you mean 'retention'?)"],
    ),
    (  # errors across items each at their own entry, every one listed
        "area: a, credentials: cams}\n    - {id: cam-2",
        "area: b, credentials: cam}\n    - {id: cam-2",
        [
            "10: inventory.cameras.0.credentials: credentials 'cam' are not defined",
            "10: inventory.cameras.0.area: area 'b' is not in areas",
        ],
    ),
    (  # format errors: every one, each on its line
        "port: 80, area: a, credentials: cams}\n    - {id: cam-2, host: 10.0.0.2, port: 80",
        "port: 0, area: a, credentials: cams}\n    - {id: cam-2, host: 10.0.0.2, port: x",
        [
            "10: inventory.cameras.0.port: Input should be greater than or equal to 1",
            "11: inventory.cameras.1.port: "
            "Input should be a valid integer, unable to parse string as an integer",
        ],
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), CHECKS, ids=[c[2][0][:60] for c in CHECKS])
def test_config_check_names_every_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, expected: list[str]
) -> None:
    monkeypatch.setenv("ZHIAN_TEST_PW", "pw")
    assert old in SITE, old
    found = problems(tmp_path, SITE.replace(old, new, 1))
    assert found == [line.replace("{tmp}", str(tmp_path.resolve())) for line in expected]


def test_secrets_are_checked_unless_told_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZHIAN_TEST_PW", raising=False)
    expected = "6: credentials.cams.password: secret env:ZHIAN_TEST_PW: "
    expected += "environment variable ZHIAN_TEST_PW is not set"
    assert problems(tmp_path, SITE) == [expected]
    assert check_config(write_site(tmp_path, SITE), secrets=False).config.community.name == "t"


def test_size_cap_and_unreadable_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(UsageError) as info:
        check_config(big)
    assert str(info.value) == (
        f"{big}: 32.0 MB, more than the 32 MB a config may have (a 1,000-camera site takes about 0.2 MB): "
        "is this the right file?"
    )
    with pytest.raises(UsageError, match=rf"^{tmp_path}: is a directory, not a config file$"):
        check_config(tmp_path)
    (tmp_path / "latin1.yaml").write_bytes(b"community: {name: \xe9}\n")
    with pytest.raises(UsageError, match=r"latin1.yaml: not UTF-8 text \(byte 18\)$"):
        check_config(tmp_path / "latin1.yaml")


def test_many_problems_are_counted_past_the_shown(tmp_path: Path) -> None:
    rows = "".join(f"    - {{id: c{n}, host: h{n}, port: 80, area: nowhere}}\n" for n in range(60))
    text = SITE.replace("  cameras:\n", "  cameras:\n" + rows)
    found = problems(tmp_path, text, secrets=False)
    assert len(found) == 51 and found[-1] == " and 10 more problems"


def test_run_checks_before_it_makes_the_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_site(tmp_path, SITE)  # ZHIAN_TEST_PW is not set
    out = tmp_path / "run"
    assert main(["run", "--config", str(path), "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"zhian: error: {path}:6: credentials.cams.password: secret env:ZHIAN_TEST_PW: "
        "environment variable ZHIAN_TEST_PW is not set"
    ]
