"""Every caveat backed by its own words, and wording that says no more than the source.

The review of November 2026 (issue 9) found caveats whose words were not in the rule's quote, a
hedge dropped, strength words the source lacks, evidence types it never names, and suggestions that
named a different drug. Each class has a test here that would have caught it, on the bundled pack
and on a planted fault.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import CASES, caveat, edit

from engine import KnowledgeBase, PackError, evaluate
from engine.authoring import check_pack
from engine.evidence import BASES
from engine.suggestions import CLOSE, closest, similarity

TODAY = dt.date(2026, 12, 1)


def problems(root: Path, code: str) -> list[str]:
    return [str(p) for p in check_pack(root, [CASES], today=TODAY).problems if p.code == code]


# -- caveats and their words ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule,code,words",
    [
        # the two caveats the review found without their words in the quote
        ("panic-beyond-three-years", "not-placebo-controlled", "not placebo-controlled"),
        ("ncse-add-phenytoin", "transient-benefit", "tended to be transient"),
    ],
)
def test_the_reviewed_caveats_now_carry_their_words(kb: KnowledgeBase, rule, code, words):
    scenarios = {
        "panic-beyond-three-years": {
            "conditions": ["panic disorder"],
            "therapy": {"duration_years": 5},
        },
        "ncse-add-phenytoin": {"conditions": ["NCSE"], "therapy": {"response": "transient"}},
    }
    statement = evaluate(scenarios[rule]).statement(rule)
    (note,) = [c for c in statement.caveats if c.code == code]
    assert words in note.support
    # within the rule's own quote, which is verbatim in the source
    assert note.support in statement.evidence.quote
    assert kb.sources[statement.evidence.source].find(statement.evidence.quote) >= 0


def test_every_caveat_support_is_verbatim_in_its_source(kb: KnowledgeBase):
    for rule in kb.rules:
        source = kb.sources[rule.evidence.source]
        for use in rule.caveats:
            assert source.find(use.support) >= 0, (rule.id, use.code)


def test_a_caveat_without_its_words_is_refused(pack: Path):
    edit(
        pack / "rules" / "3-movement-and-sleep.yaml",
        "      - code: investigational\n        support: as the use of clonazepam is still "
        "investigational\n",
        "      - investigational\n",
    )
    with pytest.raises(PackError) as info:
        KnowledgeBase.load(pack)
    (problem,) = info.value.problems
    assert problem.file == "rules/rules/3-movement-and-sleep.yaml" and problem.line == 29
    assert "caveat 'investigational' needs the words of the source that support it" in str(problem)


def test_a_caveat_whose_words_are_not_in_the_source_is_refused(pack: Path):
    edit(
        pack / "rules" / "2-anxiety.yaml",
        "support: these trials were not placebo-controlled",
        "support: these trials were not blinded",
    )
    (found,) = problems(pack, "caveat-support")
    assert found.startswith("rules/rules/2-anxiety.yaml:")
    assert "its support is not in source 'clonazepam-monograph'" in found
    assert "nearest source sentence 16" in found


def test_a_dropped_hedge_is_flagged(pack: Path):
    # panic-beyond-three-years without its `hedged` caveat, as the review found it
    path = pack / "rules" / "2-anxiety.yaml"
    hedge = (
        "      - code: hedged\n        support: Some long-term trials have suggested a benefit\n"
    )
    text = path.read_text()
    at = text.rindex(hedge)
    path.write_text(text[:at] + text[at + len(hedge) :])
    (found,) = problems(pack, "hedge")
    assert "warning: rule panic-beyond-three-years: its quote hedges ('suggested')" in found


def test_an_intensifier_the_quote_lacks_is_flagged(pack: Path):
    edit(
        pack / "rules" / "3-movement-and-sleep.yaml",
        "Restless legs syndrome can be treated with clonazepam as a third-line",
        "Restless legs syndrome can be treated with clonazepam only as a third-line",
    )
    (found,) = problems(pack, "intensifier")
    assert "rule rls-third-line: the statement says 'only', which its quote does not" in found


def test_the_bundled_pack_has_no_dropped_hedge_or_added_strength():
    report = check_pack(Path("rules"), [CASES], today=TODAY)
    assert [p for p in report.problems if p.code in ("hedge", "intensifier")] == []
    rls = evaluate({"conditions": ["RLS"]}).statement("rls-third-line")
    assert "only" not in rls.text.split()


def test_caveat_meanings_say_what_the_source_says(kb: KnowledgeBase):
    for code, caveat_ in kb.caveats.items():
        meaning = caveat_.meaning
        # a caveat speaks of the source, or (beyond-evidence) of the scenario against it
        assert meaning.startswith(("The source", "What the source", "The scenario")), code
        for inference in ("only", "so the", "not established", "less certain"):
            assert inference not in meaning, (code, inference)


# -- evidence basis -------------------------------------------------------------------------------


def test_a_specific_basis_only_where_the_source_names_it(kb: KnowledgeBase):
    assert set(BASES) == {
        "controlled-trials",
        "not-placebo-controlled-trials",
        "investigational",
        "stated",
    }
    named = {
        "controlled-trials": "controlled clinical trials",
        "not-placebo-controlled-trials": "not placebo-controlled",
        "investigational": "investigational",
    }
    for rule in kb.rules:
        words = named.get(rule.evidence.basis)
        if words is not None:
            assert words in rule.evidence.quote, rule.id


@pytest.mark.parametrize(
    "old,hint", [("clinical-experience", "stated"), ("uncontrolled-trials", "a trial can be")]
)
def test_a_retired_basis_says_what_to_write(pack: Path, old: str, hint: str):
    edit(pack / "rules" / "4-mood.yaml", "basis: stated", f"basis: {old}")
    with pytest.raises(PackError) as info:
        KnowledgeBase.load(pack)
    (problem,) = info.value.problems
    assert f"basis {old!r} is no longer used: write" in problem.message and hint in problem.message


# -- showing the words ----------------------------------------------------------------------------


def test_the_terminal_report_and_explain_show_each_caveats_words(tmp_path: Path):
    out = caveat("evaluate", "-", stdin="conditions: [RLS]").stdout
    assert "the source: “as a third-line treatment option”" in out
    assert "the source: “as the use of clonazepam is still investigational”" in out
    scenario = tmp_path / "s.yaml"
    scenario.write_text("conditions: [RLS]\n")
    out = caveat("explain", str(scenario), "--rule", "rls-third-line").stdout
    assert "caveat third-line: “as a third-line treatment option”" in out


def test_the_html_report_shows_each_caveats_words(tmp_path: Path):
    report = tmp_path / "report.html"
    proc = caveat("batch", str(CASES / "movement-and-sleep.yaml"), "--out", str(report))
    assert proc.returncode == 0, proc.stderr
    page = report.read_text()
    assert "<code>third-line</code> “as a third-line treatment option”" in page  # rules table
    # in a case's full result, beside the statement it qualifies
    assert "third line</span> the source: “as a third-line treatment option”" in page
    # an undetermined cell names the rule, and the fact that would decide it
    assert '<td class="cell maybe" title="rls-before-third-line">?' in page
    assert '<span class="need">needs therapy.line</span>' in page


# -- suggestions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,given,suggested",
    [
        ("medications", "sertraline", []),  # a real drug the pack does not know
        ("medications", "oxazepam", []),  # real benzodiazepines a letter or two from known ones
        ("medications", "temazepam", []),
        ("medications", "clobazam", []),
        ("medications", "clotiazepam", []),
        ("medications", "loprazolam", []),
        ("medications", "nordazepam", []),
        ("medications", "mephenytoin", []),
        ("conditions", "TROUBLE PANIQUE", []),  # French, not a typo
        ("conditions", "sertraline", []),
        # a word that changes the meaning is not a typo
        ("conditions", "convulsive status epilepticus", []),
        ("conditions", "epileptic myoclonus", []),
        ("conditions", "non-epileptic seizures", []),
        ("conditions", "tonic seizures", []),
        ("conditions", "clonic seizures", []),
        ("conditions", "acute panic", []),
        ("conditions", "agoraphobia without panic attacks", []),
        ("medications", "clonazapam", ["clonazepam"]),
        ("medications", "Dilantn", ["phenytoin"]),
        ("conditions", "panic disordr", ["panic disorder"]),
        ("conditions", "restles legs", ["restless legs syndrome"]),
        ("conditions", "bruxim", ["bruxism"]),
    ],
)
def test_suggestions_only_when_the_spelling_is_genuinely_close(field, given, suggested):
    (unknown,) = evaluate({field: [given]}).unrecognized
    assert unknown.suggestions[: len(suggested) or None] == suggested


def test_one_threshold_decides_suggestions():
    assert CLOSE == 0.85
    assert similarity("clonazapam", "clonazepam") == pytest.approx(0.9)
    assert similarity("oxazepam", "lorazepam") == 0  # 0.78 < CLOSE
    assert similarity("restles legs", "restless legs syndrome") >= CLOSE
    assert similarity("tonic seizures", "atonic seizures") == 0
    assert similarity("agoraphobia", "agoraphobia with panic disorder") == 0  # 3 words short
    assert closest("klonopn", ["klonopin", "valium"]) == ["klonopin"]
    assert closest("sertraline", ["flurazepam", "clonazepam"]) == []


def test_a_caveats_words_are_whole_words_of_the_source(pack: Path):
    edit(
        pack / "rules" / "3-movement-and-sleep.yaml",
        "support: in the short-term\n",
        "support: ort-te\n",
    )
    (found,) = problems(pack, "caveat-support")
    assert "its support is not in source 'clonazepam-monograph' as whole words" in found
