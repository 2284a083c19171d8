"""A loaded, validated and compiled knowledge pack: the thing `evaluate` runs against."""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path

from .bounded import remember
from .caveats import Caveat
from .codelists import code_bindings
from .compiler import Match, Program
from .conditions import leaves
from .durable_adapter import DurableRulesets
from .errors import CaveatError, PackError
from .evidence import Source
from .facts import Facts
from .pack import PackContents, bundled_pack_path, read_pack
from .reference import ReferenceMatcher
from .result import CaveatNote, EvidenceNote, KnowledgeBaseRef
from .rules import Rule
from .vocabulary import Vocabulary

# The most answers of durable_rules a matcher remembers by default (oldest dropped first; see
# engine.bounded): each is the fact's text (a few hundred bytes) and the numbers of the rules it
# fired, some 2.5 MB when full. The environment variable CAVEAT_ANSWER_CACHE sets another number
# for every pack a process loads (0: no cache).
ANSWERS_BOUND = 8192


def answers_wanted() -> int:
    """The answer cache's size: CAVEAT_ANSWER_CACHE if set (a whole number), else ANSWERS_BOUND."""
    given = os.environ.get("CAVEAT_ANSWER_CACHE", "").strip()
    if not given:
        return ANSWERS_BOUND
    try:
        return max(0, int(given))
    except ValueError:
        raise CaveatError(
            f"CAVEAT_ANSWER_CACHE={given!r}: expected a whole number of answers (0: none)"
        ) from None


class DurableMatcher:
    """Matching by durable_rules: encode the facts, fire, decode the fired rules.

    The answer cache: durable_rules is deterministic, so what it fired for a fact (keyed by the
    fact's exact JSON text) is what it would fire again. With the cache on (`answers` > 0, the
    default), each distinct fact is matched by durable_rules once per process and what it fired
    remembered, for up to `answers` facts; `hits` and `misses` count how often it served."""

    def __init__(self, program: Program, label: str, answers: int | None = None) -> None:
        self.program = program
        self.rulesets = DurableRulesets(program.rulesets, label)
        self.answers = answers_wanted() if answers is None else answers
        self._answers: dict[str, tuple[int, ...]] = {}
        self.hits = 0
        self.misses = 0

    def match(self, facts: Facts, include_background: bool) -> Match:
        payload, properties = self.program.encoded(facts, include_background)
        if self.answers <= 0:
            fired = self.rulesets.fire_text(payload, properties)
            return self.program.decode(int(name) for name in fired)
        found = self._answers.get(payload)
        if found is not None:
            self.hits += 1
        else:
            self.misses += 1
            fired = self.rulesets.fire_text(payload, properties)
            found = remember(self._answers, payload, tuple(map(int, fired)), self.answers)
        return self.program.decode(found)

    def match_plain(self, facts: Facts, include_background: bool) -> Match:
        """Matching as it was before the fast path: the fact written afresh, no answer cache
        (what the fast path is tested against)."""
        fired = self.rulesets.fire(self.program.encode(facts, include_background))
        return self.program.decode(int(name) for name in fired)

    def set_answer_cache(self, answers: int) -> None:
        """Remember up to `answers` answers (0: none, every fact matched by durable_rules);
        what was remembered is forgotten and the counts start again."""
        self.answers = answers
        self._answers = {}
        self.hits = self.misses = 0


class KnowledgeBase:
    """A pack, checked and compiled once; evaluations reuse it (safe to share across threads)."""

    def __init__(self, contents: PackContents) -> None:
        if contents.errors or contents.manifest is None:
            raise PackError(contents.problems, str(contents.root))
        self.contents = contents
        self.root: Path = contents.root
        self.manifest = contents.manifest
        self.id = self.manifest.id
        self.version = self.manifest.version
        self.digest = contents.digest()
        released = next(
            (e.digest for e in self.manifest.changelog if e.version == self.version), None
        )
        self.ref = KnowledgeBaseRef(
            id=self.id, version=self.version, digest=self.digest, released=released == self.digest
        )
        self.vocabulary = Vocabulary(
            contents.concepts, contents.ambiguous, code_bindings(contents.code_lists)
        )
        self.caveats: dict[str, Caveat] = {c.code: c for c in contents.caveats}
        self.sources: dict[str, Source] = dict(contents.sources)
        self.rules: list[Rule] = list(contents.rules)
        self.rule_index = {r.id: i for i, r in enumerate(self.rules)}
        self.categories = {c.id: c for c in self.manifest.categories}
        rank = {c.id: i for i, c in enumerate(self.manifest.categories)}
        self.order = {i: (rank[r.category], i) for i, r in enumerate(self.rules)}
        self.caveat_notes = [
            [
                CaveatNote(
                    code=c.code,
                    label=self.caveats[c.code].label,
                    text=self.caveats[c.code].meaning,
                    support=c.support,
                )
                for c in r.caveats
            ]
            for r in self.rules
        ]
        self.evidence_notes = [
            EvidenceNote(source=r.evidence.source, quote=r.evidence.quote, basis=r.evidence.basis)
            for r in self.rules
        ]
        # the concepts each rule's `except` tests leave out (to say what a broad item could be)
        self.excepted = [
            tuple(
                dict.fromkeys(c for leaf in leaves(r.when) for c in getattr(leaf, "excluded", ()))
            )
            for r in self.rules
        ]
        self.reviewed = [(r.last_review.date if r.last_review else None) for r in self.rules]
        self.background = frozenset(i for i, r in enumerate(self.rules) if r.background)
        # What a statement or an undetermined rule of each rule says whatever the scenario, in
        # the order Statement and Undetermined declare their fields (engine.statements fills in
        # the rest, and drops "needs" from a statement).
        self.statement_parts = [
            {
                "rule": r.id,
                "category": r.category,
                "text": r.statement,
                "caveats": self.caveat_notes[i],
                "evidence": self.evidence_notes[i],
                "needs": None,
                "because": None,
                "status": r.status,
                "reviewed": self.reviewed[i],
            }
            for i, r in enumerate(self.rules)
        ]
        # retired rules are never compiled; draft rules are, and are left out of results unless
        # drafts are asked for
        retired = frozenset(i for i, r in enumerate(self.rules) if r.status == "retired")
        self.drafts = frozenset(i for i, r in enumerate(self.rules) if r.status == "draft")
        sites = {rid: site.file for rid, site in contents.sites.items()}
        self.program = Program(self.rules, self.vocabulary, sites, skip=retired, order=self.order)
        speaks = self.program.speaks_to
        self.spoken: frozenset[str] = frozenset().union(
            *(c for i, c in speaks.items() if i not in self.drafts)
        )
        self.spoken_with_drafts: frozenset[str] = frozenset().union(*speaks.values())
        self.reason_cache: dict[object, object] = {}  # for statements.reasons
        self.matcher = DurableMatcher(self.program, self.id)

    @classmethod
    def load(cls, path: str | Path | None = None) -> KnowledgeBase:
        return cls(read_pack(Path(path) if path is not None else bundled_pack_path()))

    @cached_property
    def reference(self) -> ReferenceMatcher:
        """The plain-Python oracle for the same rules (tests and benchmarks)."""
        return ReferenceMatcher(self.rules, self.vocabulary)

    def rule(self, rule_id: str) -> Rule:
        return self.rules[self.rule_index[rule_id]]

    def __repr__(self) -> str:
        size = f"{len(self.rules)} rules, {self.digest[:12]}"
        return f"<KnowledgeBase {self.id} {self.version} ({size})>"


_default: KnowledgeBase | None = None
_default_lock = threading.Lock()


def load_knowledge_base(path: str | Path | None = None) -> KnowledgeBase:
    """Load and compile a pack; without a path, the bundled pack, compiled once per process."""
    global _default
    if path is not None:
        return KnowledgeBase.load(path)
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = KnowledgeBase.load()
    return _default
