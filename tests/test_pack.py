"""The bundled knowledge pack: complete, faithful to its source, and internally consistent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import RULES

from engine import KnowledgeBase, PackError
from engine import terminology as icd
from engine.conditions import concepts_mentioned
from engine.evidence import normalise_space
from engine.pack import read_pack

REQUIRED_CAVEATS = [
    "third-line",
    "investigational",
    "off-label",
    "short-term",
    "not-placebo-controlled",
    "transient-benefit",
    "tolerance",
    "add-on-required",
    "low-dose",
    "beyond-evidence",
]

# (text a scenario may use, concept it must be recognised as)
REQUIRED_NAMES = [
    ("seizures", "seizures"),
    ("epilepsy", "epilepsy"),
    ("acute seizures", "acute-seizures"),
    ("seizure disorder", "seizure-disorder"),
    ("non-convulsive status epilepticus", "non-convulsive-status-epilepticus"),
    ("NCSE", "non-convulsive-status-epilepticus"),
    ("absence seizures", "absence-seizures"),
    ("petit mal", "absence-seizures"),
    ("akinetic seizures", "akinetic-seizures"),
    ("atonic seizures", "akinetic-seizures"),
    ("myoclonic seizures", "myoclonic-seizures"),
    ("juvenile myoclonic epilepsy", "juvenile-myoclonic-epilepsy"),
    ("non-epileptic myoclonus", "non-epileptic-myoclonus"),
    ("Lennox-Gastaut syndrome", "lennox-gastaut-syndrome"),
    ("panic disorder", "panic-disorder"),
    ("panic disorder with agoraphobia", "panic-disorder-with-agoraphobia"),
    ("panic disorder without agoraphobia", "panic-disorder-without-agoraphobia"),
    ("anxiety disorder", "anxiety-disorder"),
    ("social phobia", "social-phobia"),
    ("social anxiety disorder", "social-phobia"),
    ("generalized anxiety disorder", "generalized-anxiety-disorder"),
    ("restless legs syndrome", "restless-legs-syndrome"),
    ("RLS", "restless-legs-syndrome"),
    ("bruxism", "bruxism"),
    ("REM sleep behaviour disorder", "rem-sleep-behaviour-disorder"),
    ("REM sleep behavior disorder", "rem-sleep-behaviour-disorder"),
    ("RBD", "rem-sleep-behaviour-disorder"),
    ("acute mania", "acute-mania"),
    ("akathisia", "akathisia"),
    ("clonazepam", "clonazepam"),
    ("Klonopin", "clonazepam"),
    ("phenytoin", "phenytoin"),
    ("Dilantin", "phenytoin"),
    ("Phenytek", "phenytoin"),
    ("diazepam", "diazepam"),
    ("Valium", "diazepam"),
    ("alprazolam", "alprazolam"),
    ("Xanax", "alprazolam"),
    ("lorazepam", "lorazepam"),
    ("Ativan", "lorazepam"),
    ("flurazepam", "flurazepam"),
    ("Dalmane", "flurazepam"),
]

# ICD-10-CM codes the issues name, and the concepts each must resolve to (most specific first)
REQUIRED_CODES = [
    ("G25.81", ["restless-legs-syndrome"]),
    ("F41.0", ["panic-disorder-without-agoraphobia"]),
    ("F40.01", ["panic-disorder-with-agoraphobia"]),
    ("F40.10", ["social-phobia"]),
    ("F40.11", ["social-phobia"]),
    ("F41.1", ["generalized-anxiety-disorder"]),
    ("G47.52", ["rem-sleep-behaviour-disorder"]),
    ("G47.63", ["sleep-bruxism"]),
    ("G25.71", ["akathisia"]),
    ("F30.9", ["single-manic-episode"]),
    ("F30.10", ["single-manic-episode"]),
    ("F31.2", ["bipolar-manic-episode"]),
    ("F31.13", ["bipolar-manic-episode"]),
    ("G40.A", ["absence-seizures"]),
    ("G40.A09", ["absence-seizures"]),
    ("G40.A01", ["status-epilepticus", "absence-seizures"]),
    ("G40.B09", ["juvenile-myoclonic-epilepsy"]),
    ("G40.812", ["lennox-gastaut-syndrome"]),
    ("G25.3", ["non-epileptic-myoclonus"]),
    ("G40.909", ["epilepsy"]),
    ("G40.901", ["status-epilepticus", "epilepsy"]),
]


@pytest.fixture(scope="module")
def contents():
    return read_pack(RULES)


def test_bundled_pack_has_no_problems(contents):
    assert [str(p) for p in contents.problems] == []
    assert len(contents.rules) >= 30


def test_every_quote_is_verbatim_in_its_source(kb: KnowledgeBase):
    for rule in kb.rules:
        source = kb.sources[rule.evidence.source]
        assert normalise_space(rule.evidence.quote) in source.text, rule.id


def test_every_caveat_and_concept_a_rule_uses_exists(kb: KnowledgeBase):
    for rule in kb.rules:
        for use in rule.caveats:
            assert use.code in kb.caveats, (rule.id, use.code)
        for concept in concepts_mentioned(rule.when):
            assert concept in kb.vocabulary, (rule.id, concept)
        assert rule.category in kb.categories


def test_every_claim_sentence_is_encoded_or_left_out_with_a_reason(kb: KnowledgeBase):
    source = kb.sources["clonazepam-monograph"]
    encoded: dict[int, list[str]] = {}
    for rule in kb.rules:
        for sentence in source.sentences_of(rule.evidence.quote):
            encoded.setdefault(sentence.number, []).append(rule.id)
    left_out = {
        s.number for excl in source.record.not_encoded for s in source.sentences_of(excl.quote)
    }
    for sentence in source.sentences:
        assert sentence.number in encoded or sentence.number in left_out, sentence.text
        # a sentence is either encoded or left out, not both
        assert not (sentence.number in encoded and sentence.number in left_out), sentence.text
    assert len(source.sentences) == 27
    assert left_out == {8, 12, 18, 24, 25}


def test_required_caveat_codes_exist_with_meanings(kb: KnowledgeBase):
    for code in REQUIRED_CAVEATS:
        assert code in kb.caveats
        assert len(kb.caveats[code].meaning) > 20


@pytest.mark.parametrize("text,concept", REQUIRED_NAMES)
def test_required_names_are_recognised(kb: KnowledgeBase, text: str, concept: str):
    for variant in (text, text.upper(), text.lower(), f"  {text} "):
        hit = kb.vocabulary.lookup_text(variant)
        assert hit is not None and hit.concept == concept, variant


@pytest.mark.parametrize("code,concepts", REQUIRED_CODES)
def test_required_icd_codes_resolve(kb: KnowledgeBase, code: str, concepts: list[str]):
    hits = kb.vocabulary.lookup_code("ICD-10-CM", code)
    assert [h.concept for h in hits] == concepts
    assert all(h.code_path[0] == code for h in hits)


def test_every_bound_icd_code_is_valid_and_fits_its_concept(kb: KnowledgeBase):
    for concept in kb.vocabulary.concepts.values():
        for code in concept.codes:
            if code.system != "ICD-10-CM":
                continue
            assert icd.icd_is_valid(code.code), (concept.id, code.code)
            description = icd.icd_description(code.code).casefold()
            names = [concept.label, *concept.synonyms]
            words = {w for n in names for w in n.casefold().replace("-", " ").split() if len(w) > 3}
            assert any(w.rstrip("s") in description for w in words), (concept.id, description)


def test_drug_codes_are_bound(kb: KnowledgeBase):
    atc = {
        "clonazepam": "N03AE01",
        "phenytoin": "N03AB02",
        "diazepam": "N05BA01",
        "lorazepam": "N05BA06",
        "alprazolam": "N05BA12",
        "flurazepam": "N05CD01",
    }
    for drug, code in atc.items():
        (hit,) = kb.vocabulary.lookup_code("ATC", code)
        assert hit.concept == drug
    (phenytoin,) = kb.vocabulary.lookup_code("RxNorm", "8183")
    assert phenytoin.concept == "phenytoin"


def test_codes_that_cannot_be_verified_offline_say_so(kb: KnowledgeBase):
    for concept in kb.vocabulary.concepts.values():
        for code in concept.codes:
            if code.system != "ICD-10-CM":
                assert code.verified is False and code.source, (concept.id, code.code)


def test_background_rules_are_the_scenario_independent_statements(kb: KnowledgeBase):
    background = {r.id for r in kb.rules if r.background}
    assert background == {
        "class-benzodiazepine",
        "anti-anxiety-benzodiazepine",
        "taken-by-mouth",
        "onset-and-duration",
        "mechanism-gaba",
        "gaba-inhibits-brain-activity",
        "excess-brain-activity-belief",
    }


def _copy_pack(tmp_path: Path) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(RULES, target)
    return target


def test_unknown_keys_in_a_rule_are_rejected_with_file_and_line(tmp_path: Path):
    pack = _copy_pack(tmp_path)
    path = pack / "rules" / "4-mood.yaml"
    path.write_text(
        path.read_text().replace(
            "    category: indication\n", "    category: indication\n    severity: high\n"
        )
    )
    with pytest.raises(PackError) as info:
        KnowledgeBase.load(pack)
    problems = [p for p in info.value.problems if p.severity == "error"]
    assert len(problems) == 1
    p = problems[0]
    assert p.file.endswith("4-mood.yaml") and (p.line, p.column) == (6, 5)
    assert p.message == "rules[0].severity: unknown key 'severity'"


def test_every_pack_error_is_reported_at_once(tmp_path: Path):
    pack = _copy_pack(tmp_path)
    path = pack / "rules" / "4-mood.yaml"
    text = path.read_text()
    text = text.replace("when: {condition: acute-mania}", "when: {condition: acute-manai}")
    text = text.replace(
        "quote: Clonazepam is also effective", "quote: Clonazepam is always effective"
    )
    text = text.replace(
        "basis: stated",
        "basis: stated\n    caveats: [{code: third-lien, support: also effective}]",
    )
    path.write_text(text)
    dup = pack / "rules" / "6-dup.yaml"
    dup.write_text((pack / "rules" / "4-mood.yaml").read_text())
    with pytest.raises(PackError) as info:
        KnowledgeBase.load(pack)
    messages = "\n".join(str(p) for p in info.value.problems)
    assert "unknown concept 'acute-manai' (did you mean 'acute-mania'?)" in messages
    assert "quote not found in source" in messages and "nearest source sentence 17" in messages
    assert "unknown caveat code 'third-lien' (did you mean 'third-line'?)" in messages
    assert "duplicate rule id 'acute-mania'" in messages


def test_duplicate_yaml_keys_are_errors(tmp_path: Path):
    pack = _copy_pack(tmp_path)
    path = pack / "rules" / "4-mood.yaml"
    path.write_text(
        path.read_text().replace(
            "    category: indication\n", "    category: indication\n    category: limitation\n"
        )
    )
    with pytest.raises(PackError) as info:
        KnowledgeBase.load(pack)
    (p,) = [p for p in info.value.problems if p.severity == "error"]
    assert p.line == 6 and "duplicate key 'category' (first at line 5)" in p.message


def test_digest_changes_with_any_rule_change(tmp_path: Path, kb: KnowledgeBase):
    pack = _copy_pack(tmp_path)
    same = KnowledgeBase.load(pack)
    assert same.digest == kb.digest
    path = pack / "rules" / "4-mood.yaml"
    path.write_text(path.read_text().replace("acute mania.", "acute mania!"))
    assert KnowledgeBase.load(pack).digest != kb.digest
