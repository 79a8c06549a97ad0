"""Executable spec of `careflow validate`, `careflow compile` and `careflow schema`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import build_app

from sop_pipeline_helpers import EXAMPLE, ROOT

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>[EW]-[A-Z0-9-]+): (?P<msg>.+)$")

BAD = """\
kind: sop
id: bad
version: "1.0.0"
title: Bad
nodes:
  start: {type: start, nxt: e}
  e: {type: ned}
"""


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture()
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    return path


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_valid_file_exits_0(runner: CliRunner) -> None:
    code, out, err = invoke(runner, "validate", str(EXAMPLE))
    assert code == 0, out + err
    assert "1 file(s) valid" in err
    assert all(LINE.match(line) and "W-" in line for line in out.splitlines())  # warnings only


def test_validate_invalid_file_exits_1_with_compiler_format(runner: CliRunner, bad_file: Path) -> None:
    code, out, err = invoke(runner, "validate", str(bad_file))
    assert code == 1
    lines = out.splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m["line"], m["col"], m["code"]) for m in parsed if m] == [
        ("6", "3", "E-SCHEMA-REQUIRED"), ("6", "24", "E-SCHEMA-ADDITIONAL"), ("7", "13", "E-SCHEMA-ENUM")]
    assert lines[1].endswith("(did you mean 'next'?)")
    assert "3 error(s) in 1 of 1 file(s)" in err


def test_validate_json_format(runner: CliRunner, bad_file: Path) -> None:
    code, out, _ = invoke(runner, "validate", "--format", "json", str(bad_file))
    assert code == 1
    data = json.loads(out)
    assert [d["code"] for d in data] == ["E-SCHEMA-REQUIRED", "E-SCHEMA-ADDITIONAL", "E-SCHEMA-ENUM"]
    assert set(data[0]) >= {"code", "file", "line", "column", "json_path", "message", "hint"}
    assert data[2]["json_path"] == "$.nodes.e.type" and data[2]["hint"] == "did you mean 'end'?"


def test_validate_folder_recursively(runner: CliRunner, org_library: Path) -> None:
    code, _, err = invoke(runner, "validate", str(org_library))
    assert code == 0 and "5 file(s) valid" in err
    (org_library / "sub").mkdir()
    (org_library / "sub" / "bad.yml").write_text(BAD)
    code, out, _ = invoke(runner, "validate", str(org_library))
    assert code == 1 and "sub/bad.yml:7:13: E-SCHEMA-ENUM" in out


def test_validate_usage_and_io_errors_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    code, _, err = invoke(runner, "validate", str(tmp_path / "missing.yaml"))
    assert code == 2 and "no such file" in err
    code, _, err = invoke(runner, "validate", str(tmp_path))
    assert code == 2 and "no *.yaml" in err
    code, _, _ = invoke(runner, "validate")
    assert code == 2


def test_compile_json(runner: CliRunner, tmp_path: Path) -> None:
    out_file = tmp_path / "g.json"
    code, _, err = invoke(runner, "compile", str(EXAMPLE), "-o", str(out_file))
    assert code == 0, err
    data = json.loads(out_file.read_text())
    assert data["id"] == "password_reset" and data["version"] == "1.1.0" and len(data["hash"]) == 64
    assert {n["id"] for n in data["nodes"]} >= {"start", "classify", "withdrawn"}
    assert {"source": "start", "target": "classify", "kind": "next", "label": "",
            "kinds": "next", "labels": ""}.items() <= next(
        e for e in data["edges"] if e["source"] == "start").items()
    code, out, _ = invoke(runner, "compile", str(EXAMPLE))
    assert code == 0 and json.loads(out)["hash"] == data["hash"]


def test_compile_graphml_and_errors(runner: CliRunner, bad_file: Path, tmp_path: Path) -> None:
    code, out, _ = invoke(runner, "compile", str(EXAMPLE), "--format", "graphml")
    assert code == 0 and out.lstrip().startswith("<graphml")
    code, out, _ = invoke(runner, "compile", str(bad_file))
    assert code == 1 and "E-SCHEMA-ENUM" in out
    code, _, _ = invoke(runner, "compile", str(tmp_path / "none.yaml"))
    assert code == 2


def test_schema_command(runner: CliRunner, tmp_path: Path) -> None:
    code, out, _ = invoke(runner, "schema")
    assert code == 0 and "sop\t" in out and "sop.schema.json" in out
    code, out, _ = invoke(runner, "schema", "--write", str(tmp_path / "s"))
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert written == ["agents.schema.json", "calendar.schema.json", "levels.schema.json",
                       "routing.schema.json",
                       "sla_policy.schema.json", "sop.schema.json"]


def test_exit_codes_in_a_real_process(bad_file: Path) -> None:
    """The installed entry point (cli.main) returns the documented exit codes, imports no Prefect."""
    script = ("import sys; from cli import main\n"
              "try:\n    main(sys.argv[1:])\nfinally:\n"
              "    sys.stderr.write('prefect' in sys.modules and 'PREFECT-IMPORTED' or '')\n")
    for args, expected in (([str(EXAMPLE)], 0), ([str(bad_file)], 1), (["/no/such/path"], 2)):
        proc = subprocess.run([sys.executable, "-c", script, "validate", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == expected, proc.stderr
        assert "PREFECT-IMPORTED" not in proc.stderr
        assert "Traceback" not in proc.stderr


def test_validate_each_file_on_its_own(runner: CliRunner, tmp_path: Path) -> None:
    bad_cel = tmp_path / "cel.yaml"
    bad_cel.write_text(EXAMPLE.read_text().replace('intent == "self_service_reset"', 'intent == 3'))
    code, out, _ = invoke(runner, "validate", "--no-library", str(EXAMPLE), str(bad_cel))
    assert code == 1
    assert [LINE.match(line)["code"] for line in out.splitlines() if "E-" in line] == ["E-CEL-TYPE"]  # type: ignore[index]
