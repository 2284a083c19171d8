"""Generated packs and scenarios, for differential tests and benchmarks.

A generated pack has the real pack's kinds of rules (concept presence with is_a, `except`, absence,
number and enum tests, all/any/not) over a random vocabulary, and a generated source text that its
quotes are taken from. Everything is driven by a `random.Random`, so a seed reproduces a pack.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from .caveats import Caveat
from .evidence import Source, SourceRecord
from .knowledge_base import KnowledgeBase
from .pack import Category, Manifest, PackContents, RuleSite, check_references
from .rules import Rule
from .scenario import DOSES, INTENTS, RESPONSES
from .vocabulary import Concept

CATEGORIES = ("indication", "limitation", "add-on", "dosing")
CAVEATS = ("third-line", "off-label", "short-term", "tolerance", "beyond-evidence")
NUMBER_FIELDS = {"age": (0, 130, False), "duration_years": (0, 20, False), "line": (1, 6, True)}
ENUM_FIELDS = {"intent": INTENTS, "dose": DOSES, "response": RESPONSES}


def vocabulary(rng: random.Random, n_conditions: int, n_drugs: int) -> list[Concept]:
    """A forest of concepts: each may have one or two parents among the earlier ones."""
    concepts: list[Concept] = []
    for kind, prefix, n in (("condition", "cond", n_conditions), ("drug", "drug", n_drugs)):
        ids: list[str] = []
        for i in range(n):
            cid = f"{prefix}-{i}"
            parents: list[str] = []
            if ids and rng.random() < 0.7:
                parents.append(rng.choice(ids[-12:]))
                if rng.random() < 0.15:
                    other = rng.choice(ids)
                    if other not in parents:
                        parents.append(other)
            concepts.append(
                Concept(
                    id=cid, kind=kind, label=f"{kind} {i}", synonyms=[f"{prefix}{i}"], is_a=parents
                )
            )
            ids.append(cid)
    return concepts


def condition(
    rng: random.Random, conditions: list[str], drugs: list[str], depth: int = 0
) -> dict[str, Any]:
    """A random `when` tree in the pack's YAML form."""
    roll = rng.random()
    if depth < 2 and roll < 0.35:
        op = rng.choice(["all", "any"])
        return {
            op: [condition(rng, conditions, drugs, depth + 1) for _ in range(rng.randint(2, 3))]
        }
    if depth < 2 and roll < 0.42:
        return {"not": condition(rng, conditions, drugs, depth + 1)}
    roll = rng.random()
    if roll < 0.45:
        target = rng.choice(conditions)
        if rng.random() < 0.2:
            return {"condition": {"is_a": target, "except": [rng.choice(conditions)]}}
        return {"condition": target}
    if roll < 0.6:
        target = rng.choice(drugs)
        if rng.random() < 0.2:
            return {"medication": {"is_a": target, "except": [rng.choice(drugs)]}}
        return {"medication": target}
    if roll < 0.8:
        name = rng.choice(list(NUMBER_FIELDS))
        low, high, integer = NUMBER_FIELDS[name]
        ops = rng.sample(["lt", "lte", "gt", "gte", "eq"], rng.choice([1, 1, 2]))
        test = {}
        for op in ops:
            value = rng.randint(int(low), int(high) - 1)
            test[op] = value if integer or rng.random() < 0.7 else value + 0.5
        return {name: test}
    name = rng.choice(list(ENUM_FIELDS))
    values = rng.sample(list(ENUM_FIELDS[name]), rng.choice([1, 1, 2]))
    return {name: values[0] if len(values) == 1 else values}


def rule_when(rng: random.Random, conditions: list[str], drugs: list[str]) -> Any:
    """Most rules start with a concept, as real rules do; a few are other shapes."""
    if rng.random() < 0.03:
        return "always"
    anchor = {"condition": rng.choice(conditions)}
    if rng.random() < 0.8:
        return {"all": [anchor, condition(rng, conditions, drugs, 1)]}
    return condition(rng, conditions, drugs)


def pack(
    seed: int,
    n_rules: int,
    n_conditions: int | None = None,
    n_drugs: int | None = None,
    *,
    when: Any = None,
    active: int | None = None,
    lifecycle: bool = False,
) -> KnowledgeBase:
    """A generated pack of `n_rules` rules, compiled.

    With `active`, the pack is the `active`-rule pack of the same seed plus rules over concepts of
    their own, each anchored on one of those concepts: scenarios drawn from the small pack fire the
    same rules in the large one, which is how the cost of size alone is measured. With
    `lifecycle`, some rules are drafts and some retired (else all are active)."""
    rng = random.Random(seed)
    base = active if active is not None else n_rules
    n_conditions = n_conditions or max(8, base // 4)
    n_drugs = n_drugs or max(4, base // 12)
    concepts = vocabulary(rng, n_conditions, n_drugs)
    conditions = [c.id for c in concepts if c.kind == "condition"]
    drugs = [c.id for c in concepts if c.kind == "drug"]
    whens: list[Any] = []
    if active is not None and n_rules > active:
        extra_rng = random.Random(seed + 1_000_003)
        extra = [
            c.model_copy(
                update={
                    "id": f"x{c.id}",
                    "label": f"extra {c.label}",
                    "synonyms": [f"x{s}" for s in c.synonyms],
                    "is_a": [f"x{p}" for p in c.is_a],
                }
            )
            for c in vocabulary(
                extra_rng, max(8, (n_rules - active) // 4), max(4, (n_rules - active) // 12)
            )
        ]
        concepts = concepts + extra
        x_conditions = [c.id for c in extra if c.kind == "condition"]
        x_drugs = [c.id for c in extra if c.kind == "drug"]
        whens = [
            {
                "all": [
                    {"condition": extra_rng.choice(x_conditions)},
                    condition(extra_rng, x_conditions, x_drugs, 1),
                ]
            }
            for _ in range(n_rules - active)
        ]
    sentences = [f"Generated claim number {i} of pack {seed}." for i in range(n_rules)]
    text = " ".join(sentences)
    record = SourceRecord(
        id="generated",
        title="generated source",
        text="generated.txt",
        attribution={"work": "generated", "license": "none"},
        provenance="generated for tests",
    )
    rules = []
    for i in range(n_rules):
        if i >= base:
            condition_tree = whens[i - base]
        elif when:
            condition_tree = when(rng, conditions, drugs)
        else:
            condition_tree = rule_when(rng, conditions, drugs)
        status = "active"
        if lifecycle:
            status = rng.choices(["active", "draft", "retired"], [0.85, 0.1, 0.05])[0]
        data = {
            "id": f"rule-{i}",
            "status": status,
            "category": rng.choice(CATEGORIES),
            "statement": f"Statement {i}.",
            "when": condition_tree,
            "caveats": [
                {"code": c, "support": sentences[i]}
                for c in rng.sample(list(CAVEATS), rng.randint(0, 2))
            ],
            "evidence": {"source": "generated", "quote": sentences[i], "basis": "stated"},
        }
        rules.append(Rule.model_validate(data, strict=True))
    contents = PackContents(root=Path(f"<generated-{seed}>"))
    contents.manifest = Manifest(
        id=f"generated-{seed}",
        version="0.0.0",
        title="generated",
        categories=[Category(id=c, label=c) for c in CATEGORIES],
        sources=["generated.yaml"],
    )
    contents.concepts = concepts
    contents.caveats = [Caveat(code=c, label=c, meaning=c) for c in CAVEATS]
    contents.sources = {"generated": Source(record, text)}
    contents.rules = rules
    contents.sites = {r.id: RuleSite("generated", None) for r in rules}
    contents.concept_sites = {c.id: ("generated", None) for c in concepts}
    contents.files = {"seed": str((seed, n_rules, n_conditions, n_drugs, active)).encode()}
    check_references(contents)
    return KnowledgeBase(contents)


def scenario(
    rng: random.Random, kb: KnowledgeBase, max_items: int = 4, unknown: float = 0.0
) -> dict[str, Any]:
    """A random well-formed scenario over a pack's vocabulary; values are often left out. With
    `unknown`, each list holds an item the pack does not know with that probability."""
    vocab = kb.vocabulary
    conditions = [c for c in vocab.concepts.values() if c.kind == "condition"]
    drugs = [c for c in vocab.concepts.values() if c.kind == "drug"]

    def name(concept: Concept) -> str:
        names = [concept.label, *concept.synonyms]
        text = rng.choice(names)
        return text.upper() if rng.random() < 0.1 else text

    out: dict[str, Any] = {}
    out["conditions"] = [name(rng.choice(conditions)) for _ in range(rng.randint(0, max_items))]
    if drugs and rng.random() < 0.6:
        out["medications"] = [name(rng.choice(drugs)) for _ in range(rng.randint(0, 3))]
    for field in ("conditions", "medications"):
        if unknown and rng.random() < unknown:
            out.setdefault(field, []).append(f"unknown thing {rng.randint(0, 9)}")
    if rng.random() < 0.7:
        age = rng.choice([rng.randint(0, 100), rng.randint(15, 20), rng.randint(0, 100) + 0.5])
        out["patient"] = {"age": age}
    therapy: dict[str, Any] = {}
    for field, values in ENUM_FIELDS.items():
        if rng.random() < 0.6:
            therapy[field] = rng.choice(values)
    if rng.random() < 0.6:
        therapy["duration_years"] = rng.choice([rng.randint(0, 10), rng.randint(0, 10) + 0.5, 3])
    if rng.random() < 0.6:
        therapy["line"] = rng.randint(1, 6)
    if therapy:
        out["therapy"] = therapy
    return out
