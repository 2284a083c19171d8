"""Governed knowledge: one digest that traces a result to its release, releases only of packs that
pass, a review trail in the rule files, lifecycle status, and a check that reports everything."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from conftest import CASES, RULES, caveat, edit

from engine import KnowledgeBase, evaluate, load_knowledge_base
from engine.authoring import Refused, check_pack, coverage, release, release_blockers, review
from engine.cli import main
from engine.pack import read_pack

TODAY = dt.date(2026, 12, 1)


def messages(root: Path, cases=None, today=TODAY) -> list[str]:
    return [str(p) for p in check_pack(root, cases or [CASES], today=today).problems]


def rebless(root: Path) -> None:
    edit(root / "pack.yaml", read_pack(root).manifest.changelog[0].digest, read_pack(root).digest())


# -- one digest -----------------------------------------------------------------------------------


def test_one_digest_in_results_changelog_and_version():
    contents = read_pack(RULES)
    manifest = contents.manifest
    (entry,) = [e for e in manifest.changelog if e.version == manifest.version]
    result = evaluate({"conditions": ["RLS"]})
    assert result.knowledge_base.version == manifest.version
    assert result.knowledge_base.digest == entry.digest == contents.digest()
    proc = caveat("--version")
    assert proc.returncode == 0
    assert f"clonazepam {manifest.version} (digest {entry.digest})" in proc.stdout


def test_the_digest_ignores_the_changelog_and_comments_but_nothing_else(pack: Path):
    before = read_pack(pack).digest()
    edit(pack / "pack.yaml", "# The clonazepam knowledge pack", "# A comment changed")
    edit(pack / "pack.yaml", '      - "First release', '      - "The first release')
    assert read_pack(pack).digest() == before
    edit(pack / "pack.yaml", "review_every_months: 12", "review_every_months: 6")
    assert read_pack(pack).digest() != before


# -- release --------------------------------------------------------------------------------------


def test_release_refuses_while_check_fails_and_says_which(pack: Path):
    edit(pack / "rules" / "4-mood.yaml", "condition: acute-mania", "condition: acute-manai")
    before = (pack / "pack.yaml").read_text()
    with pytest.raises(Refused, match=r"`caveat rules check` reports 1 error\(s\)"):
        release(pack, "2.2.0", ["x"], "2026-12-01", cases=[CASES])
    assert (pack / "pack.yaml").read_text() == before


def test_release_refuses_while_a_case_fails(pack: Path, tmp_path: Path):
    cases = tmp_path / "cases"
    shutil.copytree(CASES, cases)
    edit(cases / "mania.yaml", "applies: [acute-mania]", "applies: [rls-third-line]")
    (blocker,) = release_blockers(pack, [cases])
    assert blocker.startswith("`caveat rules test` has 1 of")
    assert "acute-mania-label (fail: expected rls-third-line to apply" in blocker


def test_release_refuses_while_coverage_is_incomplete(pack: Path, tmp_path: Path):
    few = tmp_path / "few.yaml"
    few.write_text(
        "- {id: rls, conditions: [RLS], expect: {applies: [rls-third-line]}}\n"
        "- {id: mania, conditions: [mania], expect: {not_applies: [rls-third-line]}}\n"
    )
    (blocker,) = release_blockers(pack, [few])  # the cases pass; the coverage does not
    assert blocker.startswith("`caveat rules coverage --fail-under 100` fails: rules ")
    assert "(uncovered: indication-seizures, seizures-acute-first-line," in blocker


def test_release_command_says_why_it_refuses(pack: Path, capsys):
    edit(pack / "rules" / "4-mood.yaml", "condition: acute-mania", "condition: acute-manai")
    code = main(["rules", "release", "2.2.0", "--change", "x", "--pack", str(pack)])
    assert code == 1
    err = capsys.readouterr().err
    assert "not releasing 2.2.0: the pack must pass its checks first" in err
    assert "unknown concept 'acute-manai'" in err


# -- check reports everything ---------------------------------------------------------------------


def test_a_duplicate_key_does_not_hide_the_rest_of_its_file(pack: Path):
    path = pack / "rules" / "4-mood.yaml"
    edit(path, "    category: indication\n", "    category: indication\n    category: indication\n")
    edit(path, "quote: Clonazepam is also effective", "quote: Clonazepam is always effective")
    found = messages(pack)
    assert any("duplicate key 'category' (first at line 5)" in m for m in found), found
    assert any("quote not found in source 'clonazepam-monograph'" in m for m in found), found


# -- lifecycle ------------------------------------------------------------------------------------


def _with_status(pack: Path, status: str) -> KnowledgeBase:
    edit(pack / "rules" / "4-mood.yaml", "status: active", f"status: {status}")
    return KnowledgeBase.load(pack)


def test_a_draft_rule_is_evaluated_only_when_asked_for(pack: Path):
    kb = _with_status(pack, "draft")
    scenario = {"conditions": ["acute mania"]}
    result = evaluate(scenario, knowledge_base=kb)
    assert "acute-mania" not in result.rules()
    assert [n.input for n in result.not_covered] == ["acute mania"]  # no active rule speaks to it
    with_drafts = evaluate(scenario, knowledge_base=kb, include_draft=True)
    assert with_drafts.statement("acute-mania").status == "draft"
    assert with_drafts.not_covered == []


def test_the_command_line_includes_drafts_on_request(pack: Path, tmp_path: Path):
    _with_status(pack, "draft")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("conditions: [acute mania]\n")
    plain = caveat("evaluate", str(scenario), "--pack", str(pack), "--json")
    drafted = caveat("evaluate", str(scenario), "--pack", str(pack), "--json", "--include-draft")
    assert '"rule": "acute-mania"' not in plain.stdout
    assert '"rule": "acute-mania"' in drafted.stdout


def test_a_retired_rule_is_never_evaluated_and_cases_expecting_it_are_reported(pack: Path):
    kb = _with_status(pack, "retired")
    for draft in (False, True):
        result = evaluate({"conditions": ["acute mania"]}, knowledge_base=kb, include_draft=draft)
        assert result.rules() == [] and result.undetermined == []
    rebless(pack)
    found = messages(pack)
    assert any(
        "case acute-mania-label: rule acute-mania is retired and never evaluated; the case still "
        "expects it" in m
        for m in found
    ), found
    assert any(
        "warning: case f30-8-is-not-acute-mania: rule acute-mania is retired" in m for m in found
    )


# -- reviews --------------------------------------------------------------------------------------


def test_review_is_recorded_in_the_rule_file_and_changes_the_digest(pack: Path):
    before = read_pack(pack).digest()
    path = pack / "rules" / "3-movement-and-sleep.yaml"
    changed = review(
        pack,
        ["rls-third-line", "bruxism-short-term"],
        "Dr. R. Viewer",
        "2026-12-02",
        note="Wording checked.",
    )
    assert changed == [path]
    contents = read_pack(pack)
    assert contents.errors == []
    rules = {r.id: r for r in contents.rules}
    for rid in ("rls-third-line", "bruxism-short-term"):
        last = rules[rid].last_review
        assert (last.by, str(last.date), last.version) == ("Dr. R. Viewer", "2026-12-02", "2.1.0")
        assert last.unreleased is False and last.note == "Wording checked."
        assert len(rules[rid].reviews) == 2  # appended to the trail
    assert rules["rls-before-third-line"].last_review.by == "Caveat maintainers"
    assert path.read_text().startswith("# Akathisia, restless legs")  # comments kept
    assert contents.digest() != before  # a pack edit like any other: it needs a release


def test_a_rule_without_reviews_gets_its_first(pack: Path):
    path = pack / "rules" / "4-mood.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("    reviews:")])
    review(pack, ["acute-mania"], "A. Reviewer", "2026-12-02")
    (rule,) = [r for r in read_pack(pack).rules if r.id == "acute-mania"]
    assert [r.by for r in rule.reviews] == ["A. Reviewer"] and rule.reviews[0].unreleased


def test_review_of_an_unknown_rule_changes_nothing(pack: Path):
    before = {p: p.read_text() for p in (pack / "rules").glob("*.yaml")}
    with pytest.raises(Refused, match=r"no rule 'acute-manai' \(did you mean 'acute-mania'"):
        review(pack, ["acute-mania", "acute-manai"], "A. Reviewer", "2026-12-02")
    assert {p: p.read_text() for p in (pack / "rules").glob("*.yaml")} == before


def test_overdue_reviews_are_warnings_as_of_the_day_given(pack: Path):
    assert [m for m in messages(pack) if "overdue" in m] == []
    late = messages(pack, today=dt.date(2028, 1, 1))
    assert any("the pack's review is overdue: it was due on 2027-11-25" in m for m in late)
    assert any(
        "rule acute-mania: its review is overdue (last 2026-11-25 by Caveat maintainers, due "
        "2027-11-25, as of 2028-01-01)" in m
        for m in late
    )
    code = main(["rules", "check", str(pack), "--cases", str(CASES), "--today", "2028-01-01"])
    assert code == 0  # warnings do not fail a check


def test_coverage_shows_each_rules_review(capsys):
    result = coverage(load_knowledge_base(), [CASES], today=TODAY)
    row = next(r for r in result.rules if r.rule == "acute-mania")
    assert (row.review, row.reviewed_by) == ("2026-11-25", "Caveat maintainers")
    late = coverage(load_knowledge_base(), [CASES], today=dt.date(2028, 1, 1))
    assert next(r for r in late.rules if r.rule == "acute-mania").review == "2026-11-25, overdue"
    assert main(["rules", "coverage", "--pack", str(RULES), "--cases", str(CASES)]) == 0
    assert "last review" in capsys.readouterr().out


def test_the_manifest_says_who_stands_behind_the_pack():
    manifest = read_pack(RULES).manifest
    assert manifest.publisher and manifest.authors and manifest.reviewers
    assert manifest.last_reviewed and manifest.review_every_months == 12
    assert "CC BY-SA 4.0" in manifest.copyright
    assert manifest.approved is None  # no clinician has approved it: the pack does not pretend


def test_a_second_review_on_the_same_day_is_recorded(pack: Path):
    review(pack, ["acute-mania"], "Dr. A", "2026-11-25")
    review(pack, ["acute-mania"], "Dr. B", "2026-11-25", note="line one\nline two")
    (rule,) = [r for r in read_pack(pack).rules if r.id == "acute-mania"]
    assert [r.by for r in rule.reviews][-2:] == ["Dr. A", "Dr. B"]
    assert rule.reviews[-1].note == "line one\nline two"  # kept as written


def test_a_review_never_lands_inside_a_block_scalar(pack: Path):
    path = pack / "rules" / "4-mood.yaml"
    text = path.read_text()
    path.write_text(
        text[: text.index("    reviews:")]
        + "    note: >\n      first line\n      #2 is not a comment here\n"
    )
    review(pack, ["acute-mania"], "Dr. A", "2026-12-02")
    (rule,) = [r for r in read_pack(pack).rules if r.id == "acute-mania"]
    assert rule.note == "first line #2 is not a comment here\n"
    assert [r.by for r in rule.reviews] == ["Dr. A"]


def test_release_into_an_empty_changelog(pack: Path):
    path = pack / "pack.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("changelog:")] + "changelog: []\n")
    digest = release(pack, "2.1.1", ["first"], "2026-12-02", cases=[CASES])
    contents = read_pack(pack)
    assert contents.errors == []
    assert [(e.version, e.digest) for e in contents.manifest.changelog] == [("2.1.1", digest)]


def test_commands_that_write_edit_only_a_pack_named_or_here(tmp_path: Path):
    for command in (
        ["rules", "review", "acute-mania", "--by", "X"],
        ["rules", "release", "9.0.0", "--change", "x"],
        ["rules", "new", "--sentence", "17"],
    ):
        proc = caveat(*command, cwd=tmp_path)
        assert proc.returncode == 2
        assert "no pack to edit here (no ./rules/pack.yaml)" in proc.stderr, proc.stderr


def test_a_result_says_whether_its_pack_is_the_released_one(pack: Path):
    assert evaluate({"conditions": ["RLS"]}).knowledge_base.released is True
    edit(pack / "rules" / "4-mood.yaml", "acute mania.", "acute mania!")
    ref = evaluate({}, knowledge_base=KnowledgeBase.load(pack)).knowledge_base
    assert ref.version == "2.1.0" and ref.released is False
    scenario = pack.parent / "s.yaml"
    scenario.write_text("conditions: [acute mania]\n")
    out = caveat("evaluate", str(scenario), "--pack", str(pack)).stdout
    assert "with changes not yet released" in out
