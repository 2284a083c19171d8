"""The concept vocabulary: what a scenario's conditions and medications can be recognised as.

Each concept has an id, a preferred label, synonyms (matched case-insensitively), `is_a` parents and
codes. A scenario item resolves by its text to one concept, and by its code to the concepts its code
is bound to: an ICD-10-CM code means what every bound code above it in the terminology means
(G40.A01 -> G40.A, absence seizures, and G40.A01 itself, status epilepticus), the most specific of
them kept. A name that could mean several concepts is listed as ambiguous: it is not recognised,
and the result names the concepts it could be.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from . import terminology
from .bounded import remember
from .scenario import CodeSystem
from .suggestions import closest, reach, within_reach

ConceptId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)]
ConceptKind = Literal["condition", "drug"]

# What a vocabulary remembers about input, at most (oldest dropped first; see engine.bounded).
# The same few spellings and codes come back across a case library; a stream of new ones only
# cycles through these. At 200 characters a spelling, each cache stays within a few megabytes.
SPELLINGS_BOUND = 4096  # spelling -> what it resolved to
SUGGESTIONS_BOUND = 1024  # (spelling, kind, limit) -> the names it is close to
CODES_BOUND = 4096  # ICD-10-CM code -> the concepts an item given as it could be


class ConceptCode(BaseModel):
    """A code bound to a concept: a scenario item with this code (or, in ICD-10-CM, a code below
    it) is recognised as the concept."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    system: CodeSystem = Field(description="ICD-10-CM, SNOMED-CT, ATC or RxNorm")
    code: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    note: str | None = Field(default=None, description="the code's description, or a remark")
    verified: bool | None = Field(
        default=None,
        description="whether the binding was checked against the code system itself; ICD-10-CM "
        "codes are checked by `caveat rules check`, other systems cannot be checked offline and "
        "say so (false) with their `source`",
    )
    source: str | None = Field(default=None, description="where the code was found")


class Concept(BaseModel):
    """A condition or drug the pack can recognise in a scenario."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: ConceptId = Field(description="what rules name")
    kind: ConceptKind = Field(description="condition or drug")
    label: Annotated[str, StringConstraints(min_length=1, max_length=120)] = Field(
        description="the preferred name, shown in results"
    )
    synonyms: list[str] = Field(default_factory=list, description="other names it is known by")
    is_a: list[ConceptId] = Field(default_factory=list, description="broader concepts")
    codes: list[ConceptCode] = Field(default_factory=list, description="codes bound to it")
    qualifier: str | None = Field(
        default=None,
        description="for a concept a code system has no code of its own for, only a qualifier "
        "of other codes (ICD-10-CM's 'with status epilepticus'): the words every bound code's "
        "description holds. Its codes mean more than the concept (each also resolves to what "
        "the codes above it mean), so their Excludes1 notes among themselves, which concern "
        "that rest, are not held against the binding",
    )
    note: str | None = Field(default=None, description="why it is bound and named as it is")


class AmbiguousName(BaseModel):
    """A name that could mean several concepts: it recognises none of them, and the result says
    which it could be, so that the scenario names one."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    concepts: list[ConceptId] = Field(min_length=2, description="what the name could mean")
    reason: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="why it cannot be read as one of them"
    )


class VocabularyFile(BaseModel):
    """concepts.yaml: the concepts, and the names too ambiguous to recognise."""

    model_config = ConfigDict(extra="forbid", strict=True)

    concepts: list[Concept] = Field(min_length=1)
    ambiguous: list[AmbiguousName] = Field(default_factory=list)


def normalise_text(text: str) -> str:
    """Case-, space- and punctuation-insensitive key for labels and synonyms."""
    text = text.casefold().replace("’", "'")
    text = re.sub(r"[\s_\-–]+", " ", text)
    text = re.sub(r"\s*([/(),])\s*", r"\1", text)
    return text.strip(" .")


def code_key(system: str, code: str) -> tuple[str, str]:
    """How a code is looked up: ICD-10-CM with its dot where ICD-10-CM has it, others trimmed
    and upper-cased."""
    if system == "ICD-10-CM":
        return system, terminology.normalise_icd(code)
    return system, code.strip().upper()


_MISSING: Any = object()


@dataclass(frozen=True)
class Resolution:
    """How one scenario item was recognised."""

    concept: str
    matched_by: Literal["label", "synonym", "code"]
    code_path: tuple[str, ...] = ()  # ICD-10-CM codes walked, given code first, bound code last


class Vocabulary:
    """Concepts indexed for lookup, with their is_a closure precomputed.

    It remembers what it worked out: per pair or per concept of the pack (`_chains`, `_could_be`,
    bounded by the pack's size), and per spelling or code of the input (`_seen`, `_ambiguities`,
    `_suggested`, `_could_be_code`, each bounded: SPELLINGS_BOUND, SUGGESTIONS_BOUND,
    CODES_BOUND)."""

    def __init__(
        self,
        concepts: Iterable[Concept],
        ambiguous: Iterable[AmbiguousName] = (),
        listed: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        """`listed`: (system, code, concept) bindings of the pack's code lists, after the
        concepts' own codes (which win where both bind a code)."""
        self.concepts: dict[str, Concept] = {}
        for concept in concepts:
            self.concepts.setdefault(concept.id, concept)
        self.ambiguous: dict[str, AmbiguousName] = {normalise_text(a.name): a for a in ambiguous}
        self.order = {cid: i for i, cid in enumerate(self.concepts)}
        self._names: dict[ConceptKind | None, dict[str, str]] = {}
        self._reach: dict[ConceptKind | None, float] = {}
        self._chains: dict[tuple[str, str], tuple[str, ...]] = {}
        self._seen: dict[str, Resolution | None] = {}
        self._ambiguities: dict[str, AmbiguousName | None] = {}
        self._suggested: dict[tuple[str, str | None, int], tuple[str, ...]] = {}
        self._could_be: dict[str, frozenset[str]] = {}
        self._could_be_code: dict[str, frozenset[str]] = {}
        # what each scenario item (list, text or code) was read as: engine.facts fills it
        self.items_read: dict[tuple[str, ...], Any] = {}
        self._closures: dict[str, frozenset[str]] = {}
        self._text: dict[str, tuple[str, Literal["label", "synonym"]]] = {}
        for concept in self.concepts.values():
            self._text.setdefault(normalise_text(concept.label), (concept.id, "label"))
        for concept in self.concepts.values():
            for syn in concept.synonyms:
                self._text.setdefault(normalise_text(syn), (concept.id, "synonym"))
        self._codes: dict[tuple[str, str], str] = {}
        self._verified: dict[tuple[str, str], bool] = {}
        for concept in self.concepts.values():
            for code in concept.codes:
                key = code_key(code.system, code.code)
                self._codes.setdefault(key, concept.id)
                self._verified.setdefault(key, code.system == "ICD-10-CM" or bool(code.verified))
        for system, code, cid in listed:
            if cid in self.concepts:
                key = code_key(system, code)
                self._codes.setdefault(key, cid)
                self._verified.setdefault(key, False)  # a published list, not the code system
        for kind in (None, "condition", "drug"):
            names = {
                key: cid
                for key, (cid, _) in self._text.items()
                if kind is None or self.concepts[cid].kind == kind
            }
            self._names[kind] = names
            self._reach[kind] = reach(names)
        self.ancestors: dict[str, frozenset[str]] = {c: self._ancestors(c) for c in self.concepts}
        children: dict[str, set[str]] = {c: set() for c in self.concepts}
        for cid, ancestors in self.ancestors.items():
            for a in ancestors:
                children[a].add(cid)
        self.descendants: dict[str, frozenset[str]] = {
            c: frozenset(d | {c}) for c, d in children.items()
        }

    def _ancestors(self, cid: str) -> frozenset[str]:
        seen: set[str] = set()
        todo = list(self.concepts[cid].is_a)
        while todo:
            parent = todo.pop()
            if parent in seen or parent not in self.concepts or parent == cid:
                continue
            seen.add(parent)
            todo.extend(self.concepts[parent].is_a)
        return frozenset(seen)

    def __contains__(self, cid: object) -> bool:
        return cid in self.concepts

    def label(self, cid: str) -> str:
        return self.concepts[cid].label

    def kind(self, cid: str) -> ConceptKind:
        return self.concepts[cid].kind

    def closure(self, cid: str) -> frozenset[str]:
        """The concept and all its ancestors."""
        found = self._closures.get(cid)
        if found is None:  # (concept ids only: bounded by the pack)
            found = self._closures[cid] = self.ancestors[cid] | {cid}
        return found

    def chain(self, start: str, goal: str) -> tuple[str, ...]:
        """The shortest is_a path from a concept up to one of its ancestors (both included)."""
        key = (start, goal)
        if key not in self._chains:
            self._chains[key] = self._chain(start, goal)
        return self._chains[key]

    def _chain(self, start: str, goal: str) -> tuple[str, ...]:
        if start == goal:
            return (start,)
        previous: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for parent in self.concepts[node].is_a:
                if parent in previous or parent not in self.concepts:
                    continue
                previous[parent] = node
                if parent == goal:
                    path = [goal]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return tuple(reversed(path))
                queue.append(parent)
        return ()

    def lookup_text(self, text: str) -> Resolution | None:
        found = self._seen.get(text, _MISSING)
        if found is _MISSING:
            hit = self._text.get(normalise_text(text))
            found = remember(
                self._seen, text, Resolution(hit[0], hit[1]) if hit else None, SPELLINGS_BOUND
            )
        return found

    def lookup_code(self, system: str, code: str) -> tuple[Resolution, ...]:
        """The concepts a code is bound to: for ICD-10-CM, those of the code and of every code
        above it, leaving out a concept that another of them is a kind of (nearest first)."""
        key = code_key(system, code)
        if system != "ICD-10-CM" or not terminology.looks_like_icd(key[1]):
            hit = self._codes.get(key)
            return (Resolution(hit, "code", (key[1],)),) if hit else ()
        lineage = terminology.icd_lineage(key[1]) or (key[1],)
        found: list[Resolution] = []
        for i, ancestor in enumerate(lineage):
            hit = self._codes.get((system, ancestor))
            if hit and all(f.concept != hit for f in found):
                found.append(Resolution(hit, "code", lineage[: i + 1]))
        return tuple(
            f
            for f in found
            if not any(f.concept in self.ancestors[g.concept] for g in found if g is not f)
        )

    def could_be(self, concept: str) -> frozenset[str]:
        """What an item recognised as `concept` could still be without being known to be: its
        narrower concepts ("benzodiazepines" could be clonazepam), with everything they are
        kinds of. Empty for a concept with nothing below it."""
        cached = self._could_be.get(concept)
        if cached is None:
            below = self.descendants.get(concept, frozenset()) - {concept}
            cached = frozenset().union(*(self.closure(c) for c in below)) if below else frozenset()
            self._could_be[concept] = cached
        return cached

    def could_be_code(self, code: str) -> frozenset[str]:
        """What an item given as an ICD-10-CM code could still be: the concepts bound to codes
        below it (F30, manic episode, could be F30.1's single manic episode), with everything
        those are kinds of and could be."""
        code = terminology.normalise_icd(code)
        cached = self._could_be_code.get(code)
        if cached is None:
            found: set[str] = set()
            for (system, bound), cid in self._codes.items():
                if (
                    system == "ICD-10-CM"
                    and bound != code
                    and terminology.icd_within(bound, (code, None))
                ):
                    found |= self.closure(cid) | self.could_be(cid)
            cached = remember(self._could_be_code, code, frozenset(found), CODES_BOUND)
        return cached

    def code_verified(self, system: str, code: str) -> bool:
        """Whether a bound code was checked against its code system (ICD-10-CM always is)."""
        return self._verified.get(code_key(system, code), False)

    def ambiguity(self, text: str) -> AmbiguousName | None:
        """The entry of an ambiguous name, if the text is one."""
        if not self.ambiguous:
            return None
        found = self._ambiguities.get(text, _MISSING)
        if found is _MISSING:
            found = self.ambiguous.get(normalise_text(text))
            remember(self._ambiguities, text, found, SPELLINGS_BOUND)
        return found

    def suggestions(self, text: str, kind: ConceptKind | None = None, limit: int = 3) -> list[str]:
        """Preferred labels of the concepts whose label or synonym is closest to the text (none
        for a text too long to be close to any: see engine.suggestions)."""
        key = (text, kind, limit)
        found = self._suggested.get(key)
        if found is None:
            spelling = normalise_text(text)
            if not within_reach(spelling, self._reach[kind]):
                return []  # answered without a search, so not worth remembering
            found = remember(
                self._suggested, key, self._suggest(spelling, kind, limit), SUGGESTIONS_BOUND
            )
        return list(found)

    def _suggest(self, spelling: str, kind: ConceptKind | None, limit: int) -> tuple[str, ...]:
        names = self._names[kind]
        labels: list[str] = []
        for key in closest(spelling, names, limit=limit * 3):
            label = self.concepts[names[key]].label
            if label not in labels:
                labels.append(label)
        return tuple(labels[:limit])

    def all_names(self) -> dict[str, str]:
        """Every normalised label and synonym with the concept it names."""
        return {key: cid for key, (cid, _) in self._text.items()}
