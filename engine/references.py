"""Cross-file checks of a pack: every id a file names exists and means what it is used for, every
quote and every caveat's words are in their source, every name and code recognises one concept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import terminology
from .conditions import HasCondition, HasMedication, when_nodes
from .errors import PackProblem
from .manifest import MANIFEST
from .rules import Rule
from .suggestions import did_you_mean
from .vocabulary import Concept, normalise_text
from .yamlfile import locate

if TYPE_CHECKING:
    from .pack import PackContents, RuleSite


def check_references(pack: PackContents) -> None:
    """Cross-file checks: every id a file names exists and means what it is used for."""
    concepts = {c.id: c for c in pack.concepts}
    problems = pack.problems

    def at(file: str, data: Any, loc: tuple[Any, ...], message: str, code: str) -> None:
        mark = locate(data, loc)
        problems.append(
            PackProblem(
                file=file,
                line=mark.line if mark else 0,
                column=mark.column if mark else 0,
                message=message,
                code=code,
            )
        )

    # vocabulary
    names: dict[str, str] = {}
    codes: dict[tuple[str, str], str] = {}
    for concept in pack.concepts:
        file, data = pack.concept_sites[concept.id]
        for i, parent in enumerate(concept.is_a):
            if parent not in concepts:
                at(
                    file,
                    data,
                    ("is_a", i),
                    f"is_a: unknown concept {parent!r}{did_you_mean(parent, concepts)}",
                    "unknown-concept",
                )
            elif concepts[parent].kind != concept.kind:
                at(
                    file,
                    data,
                    ("is_a", i),
                    f"is_a: {parent!r} is a {concepts[parent].kind}, "
                    f"{concept.id!r} is a {concept.kind}",
                    "concept-kind",
                )
        for i, text in enumerate([concept.label, *concept.synonyms]):
            key = normalise_text(text)
            owner = names.setdefault(key, concept.id)
            if owner != concept.id:
                loc = ("label",) if i == 0 else ("synonyms", i - 1)
                at(
                    file,
                    data,
                    loc,
                    f"{text!r} already names concept {owner!r}; a name must recognise one concept",
                    "ambiguous-name",
                )
        for i, code in enumerate(concept.codes):
            key2 = (
                code.system,
                terminology.normalise_icd(code.code)
                if code.system == "ICD-10-CM"
                else code.code.upper(),
            )
            owner = codes.setdefault(key2, concept.id)
            if owner != concept.id:
                at(
                    file,
                    data,
                    ("codes", i),
                    f"code {code.system} {code.code} is already bound to {owner!r}",
                    "ambiguous-code",
                )
            if code.system == "ICD-10-CM" and not terminology.looks_like_icd(code.code):
                at(
                    file,
                    data,
                    ("codes", i, "code"),
                    f"{code.code!r} is not shaped like an ICD-10-CM code (e.g. G25.81)",
                    "icd-code",
                )
    for entry in pack.ambiguous:
        owner = names.get(normalise_text(entry.name))
        if owner is not None:
            file, data = pack.concept_sites[owner]
            at(
                file,
                data,
                ("id",),
                f"{entry.name!r} is listed as ambiguous and also names concept {owner!r}: keep one",
                "ambiguous-name",
            )
    for concept in pack.concepts:
        if _has_cycle(concept.id, concepts):
            file, data = pack.concept_sites[concept.id]
            at(file, data, ("is_a",), f"is_a cycle through {concept.id!r}", "concept-cycle")

    manifest = pack.manifest
    if manifest is not None and manifest.subject and manifest.subject not in concepts:
        at(
            str(MANIFEST),
            pack.manifest_data,
            ("subject",),
            f"subject: unknown concept {manifest.subject!r}",
            "unknown-concept",
        )

    # rules
    caveats = {c.code for c in pack.caveats}
    categories = {c.id for c in pack.manifest.categories} if pack.manifest else set()
    for rule in pack.rules:
        site = pack.sites[rule.id]
        if categories and rule.category not in categories:
            at(
                site.file,
                site.data,
                ("category",),
                f"unknown category {rule.category!r}"
                f"{did_you_mean(rule.category, categories)}; categories are listed in pack.yaml",
                "unknown-category",
            )
        for i, use in enumerate(rule.caveats):
            if use.code not in caveats:
                at(
                    site.file,
                    site.data,
                    ("caveats", i, "code"),
                    f"unknown caveat code {use.code!r}{did_you_mean(use.code, caveats)}",
                    "unknown-caveat",
                )
        if len(set(rule.caveat_codes)) != len(rule.caveats):
            at(site.file, site.data, ("caveats",), "a caveat code is listed twice", "schema")
        source = pack.sources.get(rule.evidence.source)
        for i, use in enumerate(rule.caveats):
            if source is not None and source.find_words(use.support) < 0:
                near = source.nearest_sentence(use.support)
                hint = f"; nearest source sentence {near.number}: {near.text!r}" if near else ""
                at(
                    site.file,
                    site.data,
                    ("caveats", i, "support"),
                    f"caveats[{i}] ({use.code}): its support is not in source {source.id!r} as "
                    f"whole words: give the verbatim words behind the caveat{hint}",
                    "caveat-support",
                )
        if source is None:
            at(
                site.file,
                site.data,
                ("evidence", "source"),
                f"unknown source "
                f"{rule.evidence.source!r}{did_you_mean(rule.evidence.source, pack.sources)}",
                "unknown-source",
            )
        elif source.find_words(rule.evidence.quote) < 0:
            near = source.nearest_sentence(rule.evidence.quote)
            hint = f"; nearest source sentence {near.number}: {near.text!r}" if near else ""
            at(
                site.file,
                site.data,
                ("evidence", "quote"),
                f"quote not found in source {source.id!r} as whole words{hint}",
                "quote",
            )
        _check_when(rule, site, concepts, at)


def _check_when(rule: Rule, site: RuleSite, concepts: dict[str, Concept], at: Any) -> None:
    if rule.when == "always":
        return
    when_data = site.data.get("when") if isinstance(site.data, dict) else None
    for leaf, data in when_nodes(rule.when, when_data):
        if not isinstance(leaf, HasCondition | HasMedication):
            continue
        want = "condition" if isinstance(leaf, HasCondition) else "drug"
        where = data if data is not None else site.data
        loc = (leaf.kind,) if data is not None else ("when",)
        for cid in (leaf.concept, *leaf.excluded):
            concept = concepts.get(cid)
            if concept is None:
                message = f"when: unknown concept {cid!r}{did_you_mean(cid, concepts)}"
                at(site.file, where, loc, message, "unknown-concept")
            elif concept.kind != want:
                message = f"when: {leaf.kind} names {cid!r}, which is a {concept.kind}"
                at(site.file, where, loc, message, "concept-kind")


def _has_cycle(start: str, concepts: dict[str, Concept]) -> bool:
    todo = list(concepts[start].is_a)
    seen: set[str] = set()
    while todo:
        node = todo.pop()
        if node == start:
            return True
        if node in seen or node not in concepts:
            continue
        seen.add(node)
        todo.extend(concepts[node].is_a)
    return False
