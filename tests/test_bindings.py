"""Code bindings that agree with the terminology: each binding decision of the November 2026
review (issue 9) pinned by the cases that show it, and each new check of `caveat rules check` by
the fault it finds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import CASES, edit

from engine import KnowledgeBase, evaluate, load_knowledge_base
from engine.authoring import check_pack
from engine.authoring.bindings import name_fit
from engine.casefiles import read_cases
from engine.cases import run_case

TODAY = dt.date(2026, 12, 1)
REVIEW_CASES = CASES / "review-2026-11.yaml"


def found(root: Path, code: str) -> list[str]:
    return [str(p) for p in check_pack(root, [CASES], today=TODAY).problems if p.code == code]


def icd(code: str) -> dict:
    return {"code": code, "system": "ICD-10-CM"}


# -- the decisions, as they evaluate --------------------------------------------------------------


def test_juvenile_myoclonic_epilepsy_reaches_the_myoclonus_statement():
    result = evaluate({"conditions": [icd("G40.B19")], "patient": {"age": 16}})
    assert {"seizure-types", "epilepsy-children"} <= set(result.rules())
    (seen,) = result.recognized
    assert seen.concept == "juvenile-myoclonic-epilepsy" and seen.verified is True


def test_g25_3_is_not_a_seizure():
    result = evaluate({"conditions": [icd("G25.3")], "therapy": {"intent": "long-term"}})
    assert result.rules() == [] and result.undetermined == []
    (nc,) = result.not_covered
    assert nc.concept == "non-epileptic-myoclonus"


def test_myoclonus_alone_is_ambiguous_and_names_both_readings():
    (unknown,) = evaluate({"conditions": ["Myoclonus"]}).unrecognized
    assert unknown.reason.startswith("ambiguous: it could be myoclonic seizures or non-epileptic")
    assert unknown.suggestions == ["myoclonic seizures", "non-epileptic myoclonus"]


@pytest.mark.parametrize("code", ["F31.10", "F31.13", "F31.2"])
def test_bipolar_disorder_current_episode_manic_is_acute_mania(code: str):
    assert evaluate({"conditions": [icd(code)]}).rules() == ["acute-mania"]


@pytest.mark.parametrize("code", ["F30.8", "F30.3", "F30.4", "F31.0", "F31.9"])
def test_hypomania_remission_and_other_bipolar_episodes_are_not(code: str):
    assert "acute-mania" not in evaluate({"conditions": [icd(code)]}).rules()


def test_a_status_epilepticus_code_is_also_its_epilepsy_type():
    result = evaluate({"conditions": [icd("G40.811")], "patient": {"age": 8}})
    assert {r.concept for r in result.recognized} == {
        "status-epilepticus",
        "lennox-gastaut-syndrome",
    }
    assert {"seizures-acute-first-line", "seizure-types", "epilepsy-children"} <= set(
        result.rules()
    )
    assert "ncse-acute-control" not in result.rules()


def test_codes_bound_without_verification_are_marked_in_the_result():
    result = evaluate({"conditions": [{"code": "84757009", "system": "SNOMED-CT"}]})
    (seen,) = result.recognized
    assert seen.concept == "epilepsy" and seen.verified is False
    (by_name,) = evaluate({"conditions": ["epilepsy"]}).recognized
    assert by_name.verified is None


def test_the_review_cases_pass():
    outcomes = [run_case(load_knowledge_base(), e) for e in read_cases([REVIEW_CASES])]
    assert len(outcomes) >= 18
    assert [o.case for o in outcomes if o.status != "pass"] == []


def test_the_old_myoclonus_binding_is_caught_by_the_cases(pack: Path):
    """Bind G25.3 to the seizure type again, as the pack had it: the case library fails."""
    edit(
        pack / "concepts.yaml",
        '    codes:\n      - {system: ICD-10-CM, code: G25.3, note: "Myoclonus"}\n',
        "",
    )
    edit(
        pack / "concepts.yaml",
        "    is_a: [seizure-disorder]\n    note: >\n      The source lists myoclonus",
        "    is_a: [seizure-disorder]\n    codes:\n      - {system: ICD-10-CM, code: G25.3}\n"
        "    note: >\n      The source lists myoclonus",
    )
    kb = KnowledgeBase.load(pack)
    failing = {
        o.case for o in (run_case(kb, e) for e in read_cases([REVIEW_CASES])) if o.status != "pass"
    }
    assert "g25-3-no-seizure-tolerance" in failing


# -- the checks, each on the fault it finds ------------------------------------------------------


def test_the_bundled_bindings_check_clean():
    report = check_pack(Path("rules"), [CASES], today=TODAY)
    assert [str(p) for p in report.problems if p.code.startswith(("icd", "code"))] == []


def test_an_excludes1_note_naming_a_code_of_a_broader_concept_is_an_error(pack: Path):
    # F41.0 back on panic disorder: F40.01 (bound to a kind of it) excludes F41.0
    edit(
        pack / "concepts.yaml",
        '      - {system: ICD-10-CM, code: F41.0, note: "Panic disorder '
        '[episodic paroxysmal anxiety]"}\n',
        "",
    )
    edit(
        pack / "concepts.yaml",
        "    synonyms: [panic disorders]\n    is_a: [anxiety-disorder]\n    codes:\n",
        "    synonyms: [panic disorders]\n    is_a: [anxiety-disorder]\n    codes:\n"
        "      - {system: ICD-10-CM, code: F41.0}\n",
    )
    (error,) = found(pack, "icd-excludes")
    assert "panic-disorder-with-agoraphobia: ICD-10-CM F40.01: its Excludes1 note" in error
    assert "'panic disorder without agoraphobia (F41.0)' excludes F41.0, bound to " in error
    assert "'panic-disorder', which it is_a" in error


def test_an_excludes1_note_naming_a_code_of_the_same_concept_is_an_error(pack: Path):
    # bipolar mania bound to the same concept as the manic episodes of F30
    edit(
        pack / "concepts.yaml",
        '      - {system: ICD-10-CM, code: F30.9, note: "Manic episode, unspecified"}\n',
        '      - {system: ICD-10-CM, code: F30.9, note: "Manic episode, unspecified"}\n'
        "      - {system: ICD-10-CM, code: F31.2}\n",
    )
    edit(
        pack / "concepts.yaml",
        '      - {system: ICD-10-CM, code: F31.2, note: "Bipolar disorder, '
        'current episode manic severe with psychotic features"}\n',
        "",
    )
    errors = found(pack, "icd-excludes")
    assert any(
        "single-manic-episode: ICD-10-CM F31.2: its Excludes1 note 'bipolar disorder, single "
        "manic episode (F30.-)' (a note of F31) excludes F30.1, bound to this concept" in e
        for e in errors
    ), errors
    assert any("F30.1: its Excludes1 note 'bipolar disorder (F31.-)'" in e for e in errors)


def test_an_inclusion_term_that_names_another_concept_better_is_a_warning(pack: Path):
    # the synonym the review questioned, and F30.8 bound to the manic episodes again
    edit(
        pack / "concepts.yaml",
        "synonyms: [agoraphobia with panic disorder]",
        "synonyms: [agoraphobia with panic disorder, agoraphobia with panic attacks]",
    )
    edit(
        pack / "concepts.yaml",
        '      - {system: ICD-10-CM, code: F30.9, note: "Manic episode, unspecified"}\n',
        '      - {system: ICD-10-CM, code: F30.9, note: "Manic episode, unspecified"}\n'
        "      - {system: ICD-10-CM, code: F30.8}\n",
    )
    warnings = found(pack, "icd-inclusion")
    assert len(warnings) == 2 and all(": warning: " in w for w in warnings)
    assert any(
        "F41.0: its inclusion term 'Panic attack' fits 'agoraphobia with panic attacks' "
        "(concept 'panic-disorder-with-agoraphobia')" in w
        for w in warnings
    ), warnings
    assert any("F30.8: its inclusion term 'Hypomania' fits 'hypomania'" in w for w in warnings)


def test_a_qualifier_concept_binds_only_codes_with_the_qualifier(pack: Path):
    edit(
        pack / "concepts.yaml",
        "    qualifier: with status epilepticus\n",
        "    qualifier: with status epilepticus\n    codes:\n"
        '      - {system: ICD-10-CM, code: G40.909, note: "no status epilepticus"}\n'
        "    # (more codes below)\n    extra_codes:\n",
    )
    edit(pack / "concepts.yaml", "    extra_codes:\n    codes:\n", "")
    (error,) = found(pack, "icd-description")
    assert (
        "status-epilepticus: G40.909 is 'Epilepsy, unspecified, not intractable, without" in error
    )
    assert "which does not hold the qualifier 'with status epilepticus'" in error


def test_a_code_that_does_not_say_whether_it_was_verified_is_a_warning(pack: Path):
    edit(
        pack / "concepts.yaml",
        '      - {system: RxNorm, code: "8183", note: "ingredient", verified: false, '
        'source: "one public source; not checked against an RxNorm release"}',
        '      - {system: RxNorm, code: "8183"}',
    )
    (warning,) = found(pack, "code-unverified")
    assert "phenytoin: RxNorm 8183: say whether this binding was verified" in warning


def test_an_ambiguous_name_must_not_also_name_a_concept(pack: Path):
    edit(pack / "concepts.yaml", "synonyms: [nonepileptic myoclonus,", "synonyms: [myoclonus,")
    errors = [str(p) for p in check_pack(pack, [CASES], today=TODAY).errors]
    assert any("'myoclonus' is listed as ambiguous and also names concept" in e for e in errors)


def test_name_fit_prefers_the_phrase_a_term_is_built_on():
    assert name_fit("Drug-induced myoclonus", "myoclonus") > name_fit(
        "Drug-induced myoclonus", "drug-induced akathisia"
    )
    assert name_fit("Panic attack", "agoraphobia with panic attacks") > 0
    assert name_fit("Panic attack", "panic disorder") == 0
    assert name_fit("Mania NOS", "mania") == 1.0
