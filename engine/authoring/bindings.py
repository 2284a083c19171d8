"""Checks of the vocabulary's code bindings against the code systems' own words.

ICD-10-CM can be checked offline (simple-icd-10-cm): every bound code must be valid and its
description must fit its concept; a code whose Excludes1 notes name a code bound to the same concept
or to one it is a kind of contradicts its binding (an Excludes1 note says the two are never coded
together, yet the binding would make one a case of the other); and a code whose inclusion terms
name another concept better than its own is probably bound to the wrong concept. Other code systems
cannot be checked offline: their bindings must say so (`verified: false` and a `source`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .. import terminology
from ..errors import PackProblem
from ..pack import PackContents
from ..vocabulary import Concept, Vocabulary, normalise_text
from .problems import item_mark, problem

Add = Callable[[PackProblem], None]


def check_bindings(contents: PackContents, vocab: Vocabulary, add: Add) -> None:
    """Every problem of the vocabulary's code bindings."""
    bound = _icd_bindings(contents)
    for concept in contents.concepts:
        file, data = contents.concept_sites[concept.id]
        for i, code in enumerate(concept.codes):
            mark = item_mark(data, "codes", i)
            where = f"{concept.id}: {code.system} {code.code}"
            if code.system != "ICD-10-CM":
                if code.verified is None:
                    add(
                        problem(
                            file,
                            mark,
                            f"{where}: say whether this binding was verified: {code.system} "
                            "cannot be checked offline, so write `verified: false` and where the "
                            "code was found (`source: ...`)",
                            "code-unverified",
                            "warning",
                        )
                    )
                continue
            if not terminology.looks_like_icd(code.code):
                continue  # reported when the pack is read
            description = terminology.icd_description(code.code)
            if description is None:
                near = terminology.icd_nearest_valid(code.code)
                hint = f" (nearest valid: {near})" if near else ""
                add(
                    problem(
                        file,
                        mark,
                        f"{concept.id}: {code.code} is not an ICD-10-CM code{hint}",
                        "icd-code",
                    )
                )
                continue
            if concept.qualifier and concept.qualifier.casefold() not in description.casefold():
                add(
                    problem(
                        file,
                        mark,
                        f"{concept.id}: {code.code} is {description!r} in ICD-10-CM, which does "
                        f"not hold the qualifier {concept.qualifier!r}",
                        "icd-description",
                    )
                )
            elif not _description_fits(description, [concept.label, *concept.synonyms]):
                add(
                    problem(
                        file,
                        mark,
                        f"{concept.id}: {code.code} is {description!r} in ICD-10-CM, which does "
                        f"not fit {concept.label!r}",
                        "icd-description",
                    )
                )
            for message in _excludes1_conflicts(concept, code.code, vocab, bound):
                add(problem(file, mark, f"{where}: {message}", "icd-excludes"))
            for message in _inclusion_mismatches(concept, code.code, vocab):
                add(problem(file, mark, f"{where}: {message}", "icd-inclusion", "warning"))


def _icd_bindings(contents: PackContents) -> dict[str, list[str]]:
    """Concept id -> the ICD-10-CM codes bound to it (normalised)."""
    out: dict[str, list[str]] = {}
    for concept in contents.concepts:
        out[concept.id] = [
            terminology.normalise_icd(c.code)
            for c in concept.codes
            if c.system == "ICD-10-CM" and terminology.looks_like_icd(c.code)
        ]
    return out


def _description_fits(description: str, names: Iterable[str]) -> bool:
    words = {w for n in names for w in normalise_text(n).split() if len(w) > 3}
    text = normalise_text(description)
    return any(w.rstrip("s") in text for w in words)


def _excludes1_conflicts(
    concept: Concept, code: str, vocab: Vocabulary, bound: dict[str, list[str]]
) -> list[str]:
    """A code bound to this concept, or to one it is a kind of, that the code excludes."""
    code = terminology.normalise_icd(code)
    lineage = [concept.id, *sorted(vocab.ancestors.get(concept.id, ()))]
    messages: list[str] = []
    for where, note in terminology.icd_excludes1(code):
        for reference in terminology.code_references(note):
            for owner in lineage:
                if owner == concept.id and concept.qualifier:
                    continue  # the note concerns what else the codes mean
                for other in bound.get(owner, ()):
                    if other == code or not terminology.icd_within(other, reference):
                        continue
                    whose = "this concept" if owner == concept.id else f"{owner!r}, which it is_a"
                    at = "" if where == code else f" (a note of {where})"
                    messages.append(
                        f"its Excludes1 note {note!r}{at} excludes {other}, bound to {whose}: "
                        "codes that are never coded together cannot both be this concept; bind "
                        "one of them to a narrower concept"
                    )
    return messages


def _words(text: str) -> list[str]:
    text = re.sub(r"\bnos\b", " ", normalise_text(text))
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in re.findall(r"[a-z0-9]+", text)]


def _phrase_in(needle: list[str], hay: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


def name_fit(term: str, name: str) -> float:
    """How well a concept's name fits an inclusion term: 1.0 when equal; the share of the longer
    covered when one holds the other as a phrase; 0 otherwise."""
    t, n = _words(term), _words(name)
    if not t or not n:
        return 0.0
    if t == n:
        return 1.0
    if _phrase_in(n, t):
        return len(n) / len(t)
    if _phrase_in(t, n):
        return len(t) / len(n)
    return 0.0


def _inclusion_mismatches(concept: Concept, code: str, vocab: Vocabulary) -> list[str]:
    """Inclusion terms of the code that another concept's name fits better than the names of
    this concept and of the concepts it is a kind of."""
    related = vocab.ancestors.get(concept.id, frozenset()) | vocab.descendants.get(
        concept.id, frozenset({concept.id})
    )
    messages: list[str] = []
    lineage = [concept, *(vocab.concepts[a] for a in vocab.ancestors.get(concept.id, ()))]
    for term in terminology.icd_inclusion_terms(code):
        # a term naming the concept or one it is a kind of fits it
        own = max(name_fit(term, n) for c in lineage for n in (c.label, *c.synonyms))
        best, owner, name = 0.0, None, None
        for other in vocab.concepts.values():
            if other.id in related or other.kind != concept.kind:
                continue
            for n in (other.label, *other.synonyms):
                score = name_fit(term, n)
                if score > best:
                    best, owner, name = score, other.id, n
        if owner is not None and best > own:
            messages.append(
                f"its inclusion term {term!r} fits {name!r} (concept {owner!r}) better than "
                f"any name of {concept.id!r}: is the code bound to the right concept?"
            )
    return messages
