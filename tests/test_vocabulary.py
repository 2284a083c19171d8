"""Recognising conditions and medications: names, codes, the ICD-10-CM hierarchy, and what is not
recognised or not covered."""

from __future__ import annotations

from engine import evaluate


def icd(code: str) -> dict:
    return {"code": code, "system": "ICD-10-CM"}


def recognised(result) -> dict[str, str]:
    return {r.input: r.concept for r in result.recognized}


def test_a_descendant_icd_code_maps_to_the_bound_concept():
    result = evaluate({"conditions": [icd("G40.A09")]})
    (item,) = result.recognized
    assert item.concept == "absence-seizures"
    assert item.codes == ["G40.A09", "G40.A0", "G40.A"]
    assert "seizure-types" in result.rules()
    because = result.statement("indication-seizures").because[0]
    assert because.chain == ["absence-seizures", "epilepsy", "seizure-disorder", "seizures"]


def test_codes_without_dot_or_in_lower_case_are_understood():
    for code in ("G40A09", "g40.a09", " G40.A09 "):
        assert recognised(evaluate({"conditions": [icd(code)]})) == {
            f"{code.strip()} (ICD-10-CM)": "absence-seizures"
        }


def test_the_most_specific_bound_ancestor_wins():
    # F40.01 is bound itself (panic with agoraphobia, a kind of agoraphobia, bound to F40.0, and
    # of anxiety disorder, bound to F40); F40.00 falls back to F40.0 (agoraphobia)
    result = evaluate({"conditions": [icd("F40.01"), icd("F40.00"), icd("F41.8")]})
    assert recognised(result) == {
        "F40.01 (ICD-10-CM)": "panic-disorder-with-agoraphobia",
        "F40.00 (ICD-10-CM)": "agoraphobia",
        "F41.8 (ICD-10-CM)": "anxiety-disorder",
    }


def test_a_valid_code_without_a_concept_is_not_covered_with_its_description():
    result = evaluate({"conditions": [icd("I10")]})
    (item,) = result.not_covered
    assert item.input == "I10 (ICD-10-CM)" and item.concept is None
    assert item.label == "Essential (primary) hypertension"
    assert result.statements == [] and result.unrecognized == []


def test_manic_episode_in_remission_is_not_acute_mania():
    result = evaluate({"conditions": [icd("F30.3")]})
    assert result.recognized == [] and result.not_covered[0].label.startswith("Manic episode in")
    assert "acute-mania" not in result.rules()


def test_an_invalid_icd_code_is_unrecognised_with_the_nearest_valid_code():
    result = evaluate({"conditions": [icd("G40.A99")]})
    (item,) = result.unrecognized
    assert item.reason == "not a valid ICD-10-CM code"
    assert item.suggestions == ["G40.A (Absence epileptic syndrome)"]


def test_a_recognised_concept_the_pack_says_nothing_about_is_not_covered():
    result = evaluate({"conditions": ["insomnia", "epilepsy"]})
    assert [(n.input, n.concept) for n in result.not_covered] == [("insomnia", "insomnia")]
    assert "indication-seizures" in result.rules()


def test_typos_are_unrecognised_with_suggestions():
    result = evaluate(
        {"conditions": ["restles legs syndrome", "panic disordr"], "medications": ["Klonopn"]}
    )
    found = {u.input: u.suggestions for u in result.unrecognized}
    assert found["restles legs syndrome"][0] == "restless legs syndrome"
    assert found["panic disordr"][0] == "panic disorder"
    assert found["Klonopn"] == ["clonazepam"]
    assert result.statements == []


def test_an_item_in_the_wrong_list_is_explained():
    result = evaluate({"conditions": ["Valium"], "medications": ["epilepsy"]})
    reasons = {u.input: u.reason for u in result.unrecognized}
    assert "a drug, not a condition; list it under medications" in reasons["Valium"]
    assert "a condition, not a drug; list it under conditions" in reasons["epilepsy"]


def test_a_code_given_as_text_gets_a_hint():
    result = evaluate({"conditions": ["G25.81"]})
    assert "{code: G25.81, system: ICD-10-CM}" in result.unrecognized[0].reason


def test_synonyms_brands_and_other_code_systems():
    result = evaluate(
        {
            "conditions": [
                "rem sleep BEHAVIOR disorder",
                "Rapid eye movement behavior disorder",
                {"code": "32914008", "system": "SNOMED-CT"},
            ],
            "medications": ["klonopin", {"code": "N05BA12", "system": "ATC"}],
        }
    )
    assert set(recognised(result).values()) == {
        "rem-sleep-behaviour-disorder",
        "restless-legs-syndrome",
        "clonazepam",
        "alprazolam",
    }


def test_unknown_codes_of_other_systems_are_unrecognised():
    result = evaluate({"medications": [{"code": "N99ZZ99", "system": "ATC"}]})
    assert "no concept of this pack carries ATC code" in result.unrecognized[0].reason


def test_the_same_item_twice_is_reported_once():
    result = evaluate({"conditions": ["RLS", "rls", "restless legs syndrome"]})
    assert len(result.recognized) == 2  # 'RLS' and 'restless legs syndrome' differ as given
    assert result.rules().count("rls-third-line") == 1
