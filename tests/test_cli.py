"""The `caveat` command line: evaluate one scenario, for people and for programs."""

from __future__ import annotations

import json

import pytest
from conftest import CASES, caveat

from engine.cli import main

EXAMPLE = CASES / "child-absence-seizures-acute.yaml"


def test_evaluate_prints_a_readable_report():
    proc = caveat("evaluate", str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Scenario child-absence-seizures-acute" in out
    assert "What it is used for" in out and "Dose" in out
    assert "first-line treatment" in out
    assert "⚠ hedged" in out
    assert "“Clonazepam has been found effective in treating epilepsy in children”" in out
    assert "G40.A09 (ICD-10-CM) → G40.A0 → G40.A → absence seizures → epilepsy" in out
    assert "not medical advice" in out


def test_evaluate_json_is_the_result(capsys):
    assert main(["evaluate", str(EXAMPLE), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scenario_id"] == "child-absence-seizures-acute"
    assert "epilepsy-children" in [s["rule"] for s in data["statements"]]
    assert data["knowledge_base"]["id"] == "clonazepam"


def test_evaluate_reads_standard_input_as_json_or_yaml():
    for text in (
        '{"conditions": ["RLS"], "therapy": {"line": 1}}',
        "conditions: [RLS]\ntherapy: {line: 1}\n",
    ):
        proc = caveat("evaluate", "-", "--json", stdin=text)
        assert proc.returncode == 0, proc.stderr
        rules = [s["rule"] for s in json.loads(proc.stdout)["statements"]]
        assert rules == ["rls-third-line", "rls-before-third-line"]


def test_background_flag():
    proc = caveat("evaluate", "-", "--background", stdin="conditions: [RLS]")
    assert "taken by mouth" in proc.stdout and "Pharmacology" in proc.stdout


def test_undetermined_not_covered_and_unrecognised_are_shown():
    proc = caveat("evaluate", "-", stdin="conditions: [epilepsy, insomnia, restles legs]")
    out = proc.stdout
    assert "Undetermined" in out and "needs patient.age" in out
    assert "Not covered" in out and "insomnia" in out
    assert "Unrecognised" in out and "did you mean restless legs syndrome?" in out


def test_nothing_applies_is_said_out_loud():
    proc = caveat("evaluate", "-", stdin="conditions: [insomnia]")
    assert "No statement of this pack applies to this scenario." in proc.stdout


def test_a_bad_scenario_prints_every_problem_and_exits_2():
    proc = caveat("evaluate", "-", stdin='{"patient": {"age": "nine"}, "therapy": {"intent": "x"}}')
    assert proc.returncode == 2
    assert "patient.age:" in proc.stderr and "therapy.intent:" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "text,needle",
    [
        ("conditions: [a\n", "not valid YAML"),
        ("- conditions: [RLS]\n- conditions: [RLS]\n", "holds 2 cases"),
        ("conditions: [RLS]\nconditions: [akathisia]\n", "duplicate key 'conditions'"),
    ],
)
def test_malformed_files_exit_2_with_the_place(text, needle):
    proc = caveat("evaluate", "-", stdin=text)
    assert proc.returncode == 2 and needle in proc.stderr


def test_missing_file_exits_2():
    proc = caveat("evaluate", "no/such/file.yaml")
    assert proc.returncode == 2 and "no/such/file.yaml" in proc.stderr


def test_a_broken_pack_exits_2_with_its_errors(tmp_path):
    (tmp_path / "pack.yaml").write_text("id: x\n")
    proc = caveat("evaluate", str(EXAMPLE), "--pack", str(tmp_path))
    assert proc.returncode == 2 and "pack.yaml" in proc.stderr and "version" in proc.stderr
