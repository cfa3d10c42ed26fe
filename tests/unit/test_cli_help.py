"""Every command's --help: each option explained, examples, and the exit codes a script sees;
`--fail-on` turns a result into exit 3 with the reason on stderr."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from zhian.cli.main import build_parser, main


def commands(
    parser: argparse.ArgumentParser, path: str = "zhian"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += commands(child, f"{path} {name}")
    return found or [(path, parser)]


def test_every_option_has_help_and_every_command_examples_and_exit_codes() -> None:
    leaves = commands(build_parser())
    assert {"zhian run", "zhian report", "zhian diff", "zhian score", "zhian sim up"} <= {
        p for p, _ in leaves
    }
    for path, parser in leaves:
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{path} {action.option_strings or action.dest}: no help"
        epilog = parser.epilog or ""
        assert "examples:" in epilog and "exit codes:" in epilog and "  0 " in epilog, path
        assert f"  {path}" in epilog, path  # the examples use the command itself


def _verdicts(tmp_path: Path, entries: dict[str, dict[str, object]]) -> Path:
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump({"verdicts": entries}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("entries", "condition", "target", "code", "reason"),
    [
        ({"C2.3.2": {"status": "fail", "source": "machine"}}, "fail", "C", 3, "C2.3.2 failed"),
        ({"C2.3.2": {"status": "fail", "source": "machine"}}, "gate", "C", 0, None),
        ({"C1.1.3": {"status": "fail", "source": "machine"}}, "gate", "C", 3, "C1.1.3 failed: a basic"),
        (
            {"C1.1.3": {"status": "fail", "source": "machine"}},
            "grade",
            "C",
            3,
            "grade C out of reach: C1.1.3",
        ),
        ({"A2.1.1": {"status": "fail", "source": "machine"}}, "grade", "C", 0, None),
        ({"A2.1.1": {"status": "fail", "source": "machine"}}, "grade", "A", 3, "A2.1.1 failed (9.3)"),
        ({}, "grade", "A", 0, None),  # everything waits for the evaluator: nothing is out of reach yet
    ],
)
def test_score_fail_on(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    entries: dict[str, dict[str, object]],
    condition: str,
    target: str,
    code: int,
    reason: str | None,
) -> None:
    argv = ["score", str(_verdicts(tmp_path, entries)), "--fail-on", condition, "--target", target]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert (reason in err) if reason else err == ""


def test_fail_on_grade_when_a_level_cannot_pass_any_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mapping.catalog import load_catalog

    scored = [i for i in load_catalog().level("C") if i.kind == "scored"]
    failed = {i.id: {"status": "fail", "source": "machine"} for i in scored[: len(scored) // 2 + 2]}
    assert main(["score", str(_verdicts(tmp_path, failed)), "--fail-on", "grade"]) == 3
    assert "level C can reach at most" in capsys.readouterr().err
    assert main(["score", str(_verdicts(tmp_path, failed))]) == 0  # without --fail-on: exit 0 whatever


def test_run_says_whether_it_samples() -> None:
    from zhian.cli.run import sample_line

    cameras = {"population": 10, "size": 3, "rule": "7.4 a): fewer than 100 -> at least 30 %"}
    assert (
        sample_line("inspection", 42, {"camera": cameras}) == "7.4 sample, seed 42: 3 of 10 camera (7.4 a))"
    )
    assert sample_line("monitoring", 42, {}).startswith("scope: every device")
    whole = {"population": 2, "size": 2, "rule": "7.4 a)"}
    assert sample_line("inspection", 42, {"door": whole}).startswith("scope: every device")


def test_each_command_is_built_from_its_own_module_alone() -> None:
    from zhian.cli.main import FAMILIES

    whole = build_parser()
    [tree] = [a for a in whole._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(tree.choices) == [name for names in FAMILIES.values() for name in names]
    for names in FAMILIES.values():
        for name in names:
            [alone] = [a for a in build_parser(name)._actions if isinstance(a, argparse._SubParsersAction)]
            assert list(alone.choices) == list(names), name


def test_config_check_loads_no_protocol_library(tmp_path: Path) -> None:
    """`zhian config check` is typed and waited for: it must not import what only runs need."""
    import subprocess
    import sys

    config = tmp_path / "site.yaml"
    config.write_text(
        "version: 1\ncommunity: {name: t, target_level: C}\n"
        "areas: [{id: a, kind: residence}]\ninventory: {}\n",
        encoding="utf-8",
    )
    heavy = (
        "aiohttp",
        "zeep",
        "pymodbus",
        "babel",
        "psycopg",
        "simulator",
        "aiomqtt",
        "jinja2",
        "onvif",
        "asyncio",
    )
    script = (
        "import sys\nfrom zhian.cli.main import main\n"
        f"code = main(['config', 'check', '--no-secrets', {str(config)!r}])\n"
        f"print(code, [m for m in {heavy!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr
