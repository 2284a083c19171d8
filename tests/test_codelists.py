"""Code lists in a pack: published codes bound to concepts, each list citing its source; and the
manifest's subject codes, each bound to the subject concept."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import CASES, caveat, edit

from engine import KnowledgeBase, evaluate
from engine.authoring.check import check_pack
from engine.pack import read_pack

LIST = "codelists/benzodiazepines-rxnorm.yaml"


def test_a_product_code_of_the_list_is_read_as_its_ingredient(kb: KnowledgeBase):
    result = evaluate(
        {
            "conditions": ["panic disorder"],
            "medications": [{"code": "197527", "system": "RxNorm"}],  # clonazepam 0.5 MG tablet
        }
    )
    seen = next(r for r in result.recognized if r.field == "medications")
    assert seen.concept == "clonazepam" and seen.matched_by == "code"
    assert seen.verified is False  # a published list, not the code system itself
    assert kb.vocabulary.lookup_code("RxNorm", "197527")[0].concept == "clonazepam"
    # another benzodiazepine of the list is the class, never clonazepam
    assert kb.vocabulary.lookup_code("RxNorm", "308047")[0].concept != "clonazepam"


def test_every_clonazepam_code_of_the_list_names_clonazepam_and_no_other_drug():
    data = yaml.safe_load((Path("rules") / LIST).read_text())
    clonazepam = [c for c in data["codes"] if c["concept"] == "clonazepam"]
    assert len(clonazepam) >= 10
    others = ("diazepam", "lorazepam", "alprazolam", "flurazepam", "chlordiazepoxide")
    for entry in clonazepam:
        words = entry["display"].lower()
        assert "clonazepam" in words and not any(o in words for o in others), entry
    assert data["source"]["url"] and data["source"]["date"]


def test_the_bundled_pack_names_its_subject_by_rxnorm_and_atc(kb: KnowledgeBase):
    codes = {(c.system, c.code) for c in kb.manifest.subject_codes}
    assert {("RxNorm", "2598"), ("ATC", "N03AE01")} <= codes
    for system, code in codes:
        assert kb.vocabulary.lookup_code(system, code)[0].concept == kb.manifest.subject


def test_a_code_list_without_a_cited_source_is_an_error(pack: Path):
    path = pack / LIST
    data = yaml.safe_load(path.read_text())
    del data["source"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    found = [str(p) for p in read_pack(pack).errors]
    assert any(
        LIST in f and "has no source" in f and "cite where the list was published" in f
        for f in found
    ), found
    proc = caveat("rules", "check", str(pack), "--cases", str(CASES))
    assert proc.returncode == 1 and "has no source" in proc.stdout, proc.stdout + proc.stderr


def test_a_source_without_url_or_date_is_an_error(pack: Path):
    path = pack / LIST
    data = yaml.safe_load(path.read_text())
    data["source"].pop("url")
    data["source"].pop("retrieved_from", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert any("lacks a url" in str(p) for p in read_pack(pack).errors)
    data["source"]["url"] = "http://example.org/vs"
    data["source"].pop("date")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert any("lacks a date" in str(p) for p in read_pack(pack).errors)


def test_a_code_list_entry_for_an_unknown_concept_or_a_contradicting_binding_is_an_error(
    pack: Path,
):
    path = pack / LIST
    text = path.read_text()
    path.write_text(text.replace("concept: clonazepam}", "concept: clonazepan}", 1))
    found = [str(p) for p in read_pack(pack).errors]
    assert any("unknown concept 'clonazepan'" in f for f in found), found
    # the ingredient code of phenytoin listed as clonazepam contradicts concepts.yaml
    path.write_text(text + '  - {code: "8183", display: "phenytoin", concept: clonazepam}\n')
    found = [str(p) for p in read_pack(pack).errors]
    assert any("RxNorm 8183 is bound to 'phenytoin'" in f for f in found), found


def test_a_subject_code_not_bound_to_the_subject_is_an_error(pack: Path):
    edit(pack / "pack.yaml", '{system: RxNorm, code: "2598"}', '{system: RxNorm, code: "8183"}')
    found = [str(p) for p in check_pack(pack, [CASES]).errors]
    assert any(
        "subject_codes[0]: RxNorm 8183 is bound to 'phenytoin'" in f and "pack.yaml:" in f
        for f in found
    ), found
    edit(pack / "pack.yaml", '{system: RxNorm, code: "8183"}', '{system: RxNorm, code: "999"}')
    found = [str(p) for p in read_pack(pack).errors]
    assert any("RxNorm 999 is not bound to any concept" in f for f in found), found


def test_a_code_list_path_outside_the_pack_is_refused(pack: Path):
    edit(pack / "pack.yaml", f"  - {LIST}", "  - ../outside.yaml")
    found = [str(p) for p in read_pack(pack).errors]
    assert any("code_lists[0]" in f and "leads outside the pack" in f for f in found), found
