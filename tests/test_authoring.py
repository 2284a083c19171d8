"""The rule-authoring workflow: check, test, coverage, explain, new, diff and release."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CASES, RULES, edit

from engine import load_knowledge_base
from engine.authoring import Refused, check_pack, coverage, diff, release, scaffold
from engine.cli import main
from engine.explain import explain
from engine.pack import read_pack

TODAY = dt.date(2026, 12, 1)  # within the bundled pack's review interval


def errors(root: Path, cases=None) -> list[str]:
    return [str(p) for p in check_pack(root, cases or [CASES], today=TODAY).errors]


def rebless(root: Path) -> None:
    """Record the current digest, so that only the problem under test is reported."""
    edit(root / "pack.yaml", read_pack(root).manifest.changelog[0].digest, read_pack(root).digest())


# -- check --------------------------------------------------------------------------------------


def test_the_bundled_pack_checks_clean(capsys):
    assert main(["rules", "check", str(RULES), "--cases", str(CASES), "--today", "2026-12-01"]) == 0
    assert capsys.readouterr().out.strip().endswith("0 error(s), 0 warning(s)")


def test_conditions_that_can_never_hold_are_reported_where_they_are(pack: Path):
    mood = pack / "rules" / "4-mood.yaml"
    edit(
        mood,
        "when: {condition: acute-mania}",
        "when:\n      any:\n        - condition: "
        "acute-mania\n        - all:\n            - age: {lt: 5}\n            - age: {gt: 10}\n"
        "        - all: [{intent: acute}, {intent: long-term}]",
    )
    rebless(pack)
    found = errors(pack)
    assert len(found) == 2
    assert found[0].startswith("rules/rules/4-mood.yaml:10:11: rule acute-mania: the part")
    assert "(patient.age < 5 and patient.age > 10)' can never hold" in found[0]
    assert found[1].startswith("rules/rules/4-mood.yaml:13:11:")
    assert "therapy.intent = acute and therapy.intent = long-term" in found[1]


def test_a_whole_condition_that_can_never_hold(pack: Path):
    edit(
        pack / "rules" / "4-mood.yaml",
        "when: {condition: acute-mania}",
        "when: {all: [{line: {gt: 2}}, {line: {lt: 3}}]}",
    )
    rebless(pack)
    (found,) = errors(pack)
    assert "rule acute-mania: the condition can never hold" in found


def test_two_rules_with_the_same_conditions_and_claim(pack: Path):
    text = (pack / "rules" / "4-mood.yaml").read_text()
    copy = text.replace("id: acute-mania", "id: acute-mania-again").replace(
        "when: {condition: acute-mania}", "when: {any: [{condition: acute-mania}]}"
    )
    (pack / "rules" / "6-copy.yaml").write_text(copy)
    rebless(pack)
    (found,) = errors(pack)
    assert found.startswith(
        "rules/rules/6-copy.yaml:3:5: rule acute-mania-again has the same "
        "conditions and quote as rule acute-mania"
    )


def test_unknown_names_are_located_and_corrected(pack: Path):
    edit(
        pack / "rules" / "1-seizures.yaml",
        "        - condition: epilepsy\n        - age: {lt: 18}"
        "\n    evidence:\n      source: clonazepam-monograph\n      quote: Clonazepam has",
        "        - condition: epilepsi\n        - age: {lt: 18}\n    evidence:\n"
        "      source: clonazepam-monograph\n      quote: Clonazepam has",
    )
    found = errors(pack)
    assert any(
        "1-seizures.yaml:72:22: when: unknown concept 'epilepsi' (did you mean 'epilepsy'?)" in f
        for f in found
    ), found


def test_icd_codes_are_checked_against_the_terminology(pack: Path):
    edit(pack / "concepts.yaml", "code: G25.81,", "code: G25.89,")
    edit(pack / "concepts.yaml", "code: G47.63,", "code: G47.99,")
    rebless(pack)
    found = errors(pack)
    assert any(
        "G25.89 is 'Other specified extrapyramidal and movement disorders' in ICD-10-CM, "
        "which does not fit 'restless legs syndrome'" in f
        for f in found
    ), found
    assert any("G47.99 is not an ICD-10-CM code (nearest valid: G47.9)" in f for f in found)


def test_rules_no_case_exercises_are_warnings(pack: Path, tmp_path: Path):
    few = tmp_path / "few.yaml"
    few.write_text("conditions: [RLS]\nexpect: {applies: [rls-third-line]}\n")
    report = check_pack(pack, [few], today=TODAY)
    assert report.errors == []
    warned = {p.message.split(":")[0] for p in report.warnings}
    assert "rule acute-mania" in warned and "rule rls-third-line" not in warned


def test_a_rule_change_without_a_version_change_fails(pack: Path):
    edit(pack / "rules" / "4-mood.yaml", "acute mania.", "acute mania (sentence 17).")
    (found,) = errors(pack)
    assert "the pack changed but its version did not: 2.1.0 was released as" in found
    assert found.startswith("rules/pack.yaml:")


def test_check_json_and_exit_status(pack: Path, capsys):
    edit(pack / "caveats.yaml", "code: tolerance", "code: tolerance\n    colour: red")
    rebless(pack)
    assert main(["rules", "check", str(pack), "--format", "json", "--cases", str(CASES)]) == 1
    data = json.loads(capsys.readouterr().out)
    (problem,) = [p for p in data["problems"] if p["file"] == "rules/caveats.yaml"]
    assert problem["severity"] == "error" and problem["line"] > 0
    # and the rules that use the caveat it invalidated say so
    assert any("unknown caveat code 'tolerance'" in p["message"] for p in data["problems"])
    assert "unknown key 'colour'" in problem["message"]


# -- test and coverage -----------------------------------------------------------------------------


def test_rules_test_filters_and_shows_expected_against_actual(tmp_path: Path, capsys):
    failing = tmp_path / "failing.yaml"
    failing.write_text(
        "- id: wrong-one\n  conditions: [RLS]\n  expect: {applies: [acute-mania]}\n"
        "- id: right-one\n  conditions: [RLS]\n  expect: {applies: [rls-third-line]}\n"
    )
    assert main(["rules", "test", str(failing), "--pack", str(RULES)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  wrong-one" in out and "expected acute-mania to apply; it does not apply" in out
    assert "actual: applies [rls-third-line]; undetermined [rls-before-third-line]" in out
    assert "right-one" not in out
    assert main(["rules", "test", str(failing), "--case", "right-*", "--pack", str(RULES)]) == 0
    assert (
        main(
            [
                "rules",
                "test",
                str(CASES),
                "--rule",
                "ncse-add-phenytoin",
                "-v",
                "--pack",
                str(RULES),
            ]
        )
        == 0
    )
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("PASS")]
    assert 0 < len(listed) < 20


def test_coverage_is_complete_for_the_bundled_pack(capsys):
    kb = load_knowledge_base()
    result = coverage(kb, [CASES])
    assert result.rule_percent == 100.0 and result.source_percent == 100.0
    row = next(r for r in result.rules if r.rule == "rls-before-third-line")
    assert row.applies and row.near_misses
    sentence = next(s for s in result.sentences if s.number == 25)
    assert sentence.left_out and not sentence.rules
    assert (
        main(
            [
                "rules",
                "coverage",
                "--fail-under",
                "100",
                "--pack",
                str(RULES),
                "--cases",
                str(CASES),
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["rule_percent"] == 100.0


def test_coverage_finds_uncovered_rules(tmp_path: Path):
    one = tmp_path / "one.yaml"
    one.write_text("conditions: [RLS]\ntherapy: {line: 1}\nexpect: {applies: [rls-third-line]}\n")
    result = coverage(load_knowledge_base(), [one])
    row = next(r for r in result.rules if r.rule == "rls-third-line")
    assert row.applies and not row.near_misses and not row.covered
    assert result.rule_percent < 10
    assert (
        main(["rules", "coverage", "--cases", str(one), "--fail-under", "90", "--pack", str(RULES)])
        == 1
    )


# -- explain ---------------------------------------------------------------------------------------


def test_explain_a_rule_with_its_tree_and_chain():
    kb = load_knowledge_base()
    scenario = {"patient": {"age": 30}, "conditions": [{"code": "G40.A09", "system": "ICD-10-CM"}]}
    (rule,) = explain(kb, scenario, "epilepsy-children").rules
    assert rule.status == "does not apply"
    assert rule.condition.value == "false"
    concept, age = rule.condition.children
    assert concept.value == "true" and concept.facts[0].chain == ["absence-seizures", "epilepsy"]
    assert concept.facts[0].codes == ["G40.A09", "G40.A0", "G40.A"]
    assert age.value == "false" and age.facts[0].test == "≥ 18"
    unknown = explain(kb, {"conditions": ["epilepsy"]}, "epilepsy-children").rules[0]
    assert unknown.status == "undetermined" and unknown.condition.children[1].value == "unknown"
    assert unknown.condition.children[1].needs == ["patient.age"]


def test_explain_without_a_rule_shows_what_applied_and_the_near_misses():
    kb = load_knowledge_base()
    explanation = explain(kb, {"conditions": ["RLS"], "therapy": {"line": 3}})
    statuses = {r.rule: r.status for r in explanation.rules}
    assert statuses == {"rls-third-line": "applies", "rls-before-third-line": "does not apply"}


def test_explain_command_text_and_json(capsys, tmp_path: Path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("conditions: [{code: G40.A09, system: ICD-10-CM}]\n")
    assert main(["explain", str(scenario), "--rule", "seizure-types", "--pack", str(RULES)]) == 0
    out = capsys.readouterr().out
    assert "condition G40.A09 (ICD-10-CM) → G40.A0 → G40.A → absence seizures" in out
    assert "├─ ✓ condition is absence seizures or a kind of it" in out
    assert main(["explain", str(scenario), "--format", "json", "--pack", str(RULES)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "seizure-types" in [r["rule"] for r in data["rules"]]
    assert main(["explain", str(scenario), "--rule", "no-such-rule", "--pack", str(RULES)]) == 2


# -- new, diff, release ----------------------------------------------------------------------------


def test_new_scaffolds_a_rule_that_fails_check_until_filled(pack: Path, tmp_path: Path):
    cases = tmp_path / "cases"
    cases.mkdir()
    kb = load_knowledge_base(pack)
    made = scaffold(kb, quote="Bruxism also responds", rule_id="bruxism-again", cases_dir=cases)
    assert made.sentence == 10 and made.concepts == ["bruxism"]
    assert made.already == ["bruxism-short-term", "bruxism-long-term-beyond-evidence"]
    text = made.rule_file.read_text()
    assert 'quote: "Bruxism also responds"' in text  # the author's span, found in sentence 10
    found = errors(pack, [cases])
    assert sum("placeholder left by `caveat rules new`" in f for f in found) == 3
    assert "[bruxism-again]" in made.case_file.read_text()
    with pytest.raises(ValueError, match="nearest is sentence 17"):
        scaffold(kb, quote="Clonazepam is effective in acute mania", cases_dir=cases)
    with pytest.raises(ValueError, match="exists already"):
        scaffold(kb, sentence=10, rule_id="bruxism-again", cases_dir=cases)


def test_diff_against_a_directory(pack: Path, tmp_path: Path, capsys):
    before = tmp_path / "before"
    shutil.copytree(pack, before)
    edit(
        pack / "rules" / "3-movement-and-sleep.yaml",
        "      - code: investigational\n        support: as the use of clonazepam is still "
        "investigational\n",
        "",
    )
    kb = load_knowledge_base(pack)
    result = diff(kb, str(before), [CASES])
    assert result.changed and result.unchanged + len(result.changed) == result.cases
    assert all(c.changes == ["~ rls-third-line caveats -investigational"] for c in result.changed)
    assert (
        main(
            [
                "rules",
                "diff",
                str(before),
                "--pack",
                str(pack),
                "--cases",
                str(CASES),
                "--fail-on-change",
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert "~ rls-third-line caveats -investigational" in out
    assert out.strip().endswith(f"{len(result.changed)} changed, {result.unchanged} unchanged")
    assert (
        main(
            [
                "rules",
                "diff",
                str(pack),
                "--pack",
                str(pack),
                "--cases",
                str(CASES),
                "--fail-on-change",
            ]
        )
        == 0
    )


def test_diff_against_a_git_revision(pack: Path, tmp_path: Path):
    repo = pack.parent
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run([*git, *command], cwd=repo, check=True, capture_output=True)
    edit(
        pack / "rules" / "4-mood.yaml",
        "when: {condition: acute-mania}",
        "when: {all: [{condition: acute-mania}, {not: {intent: long-term}}]}",
    )
    kb = load_knowledge_base(pack)
    result = diff(kb, "HEAD", [CASES])
    changes = {c.case: c.changes for c in result.changed}
    assert changes["acute-mania-label"] == [
        "- acute-mania no longer applies",
        "+ acute-mania undetermined (needs therapy.intent)",
    ]
    with pytest.raises(ValueError, match="neither a pack directory nor a git revision"):
        diff(kb, "no-such-revision", [CASES])


def test_release_bumps_the_version_and_records_the_digest(pack: Path):
    edit(pack / "rules" / "4-mood.yaml", "acute mania.", "acute mania (sentence 17).")
    assert errors(pack)
    digest = release(pack, "2.2.0", ["Reworded acute-mania."], "2026-11-25", cases=[CASES])
    assert errors(pack) == []
    manifest = read_pack(pack).manifest
    assert manifest.version == "2.2.0" and manifest.changelog[0].digest == digest
    assert manifest.changelog[0].changes == ["Reworded acute-mania."]
    assert "# The clonazepam knowledge pack" in (pack / "pack.yaml").read_text()  # comments kept
    assert load_knowledge_base(pack).digest == digest  # what results report
    with pytest.raises(Refused, match="not after the current version"):
        release(pack, "2.0.5", ["x"], "2026-11-25", cases=[CASES])
