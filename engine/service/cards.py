"""A result as CDS Hooks cards.

- One card per statement that applies, so that a clinician can accept or dismiss each claim of
  the source on its own, and feedback counts per rule. Cards come in the result's order (by
  category, as the pack lists them).
- `indicator`: `warning` when the statement carries a limiting caveat (engine.caveats.LIMITING:
  the use is off-label, investigational, third-line, short-term, of transient benefit, subject to
  tolerance, beyond the evidence, or needs an add-on), `info` otherwise: a supported use, or one
  whose caveats only qualify the evidence (not placebo-controlled, reported at low doses,
  hedged). A caveat code the service does not know is taken as limiting. Never `critical`: the
  source makes no claim of that urgency.
- `summary`: the statement, cut at a word to fit under 140 characters (the detail has it whole).
- `detail` (GitHub-flavoured markdown): the statement, each caveat with its meaning and the
  source's words behind it, the verbatim quote, the evidence basis, the patient facts it rests
  on, and the disclaimer. Every text from the pack or the request is escaped as literal text.
- `source`: the pack's title and version as label, the statement's category as `topic`, and the
  pack's id, version and digest in the `org.caveat.pack` extension.
- `uuid`: an RFC 9562 version-8 UUID that carries the first 48 bits of the pack's digest and
  the rule's index, so that feedback names the rule without the service keeping state (any
  process serving the same pack reads it); the rest is random.
- What the pack could not decide gets one `info` card of its own: the undetermined statements
  with what would decide them, recognised items it does not cover, items it did not recognise
  (conditions counted, not listed: a patient's unrelated conditions are many), and what of the
  FHIR data could not be read. Silence never reads as "nothing applies".
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from ..caveats import QUALIFYING, indicator
from ..cleantext import markdown
from ..fhir.mapping import FhirMapping
from ..knowledge_base import KnowledgeBase
from ..render import DISCLAIMER, because_text
from ..result import Result, Statement
from .protocol import Card, Coding, Source

SUMMARY_MAX = 139
TOPIC_SYSTEM = "urn:caveat:category"
OVERRIDE_SYSTEM = "urn:caveat:override-reason"
OVERRIDE_REASONS = (
    Coding(system=OVERRIDE_SYSTEM, code="not-applicable", display="Does not apply to this patient"),
    Coding(system=OVERRIDE_SYSTEM, code="already-known", display="Already known and considered"),
    Coding(system=OVERRIDE_SYSTEM, code="clinical-judgement", display="Clinical judgement"),
    Coding(system=OVERRIDE_SYSTEM, code="data-wrong", display="The patient's record is wrong"),
)
INFO_CARD = 0  # the rule slot of the "what could not be decided" card
MAX_RULES = 0xFFE  # rules a card uuid can name (the slot is 12 bits; 0 is the info card)
LISTED = 5  # items listed one by one in the info card before the rest are counted


def card_uuid(digest: str, slot: int) -> str:
    """A version-8 UUID: 48 bits of the pack digest, 12 bits of rule slot, 62 random bits."""
    high = int(digest[:12], 16)
    value = (high << 80) | (0x8 << 76) | ((slot & 0xFFF) << 64) | (0b10 << 62)
    value |= secrets.randbits(62)
    return str(uuid.UUID(int=value))


def read_card_uuid(text: str, kb: KnowledgeBase) -> tuple[str, str | None]:
    """What a card uuid names: ('rule', rule id), ('info', None), or ('unknown', None) for a
    uuid this pack did not issue (another pack, another version, or not ours)."""
    try:
        value = uuid.UUID(text)
    except ValueError:
        return "unknown", None
    if value.version != 8 or f"{value.int >> 80:012x}" != kb.digest[:12]:
        return "unknown", None
    slot = (value.int >> 64) & 0xFFF
    if slot == INFO_CARD:
        return "info", None
    if slot - 1 < len(kb.rules) and slot <= MAX_RULES:
        return "rule", kb.rules[slot - 1].id
    return "unknown", None


def summary_of(text: str, labels: list[str] | None = None) -> str:
    """One line under 140 characters: the text whole when it fits; else, so that cutting it
    never drops what qualifies it, its caveats' labels first ("Off-label: ..."), then the text
    cut at a word with an ellipsis (the detail has it whole)."""
    line = " ".join(text.split())
    if len(line) <= SUMMARY_MAX:
        return line
    if labels:
        head = "; ".join(labels)
        line = f"{head[:1].upper()}{head[1:]}: {line}"
    cut = line[: SUMMARY_MAX - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def _labels(caveats: list[Any]) -> list[str]:
    """Caveat labels, the limiting ones first."""
    limiting = [c.label for c in caveats if c.code not in QUALIFYING]
    return limiting + [c.label for c in caveats if c.code in QUALIFYING]


def _source(kb: KnowledgeBase, category: str | None) -> Source:
    topic = None
    if category is not None:
        label = kb.categories[category].label if category in kb.categories else category
        topic = Coding(system=TOPIC_SYSTEM, code=category, display=label)
    return Source(
        label=f"{kb.manifest.title} (pack {kb.id} {kb.version})",
        topic=topic,
        extension={
            "org.caveat.pack": {
                "id": kb.id,
                "version": kb.version,
                "digest": kb.digest,
                "released": kb.ref.released,
            }
        },
    )


def statement_card(kb: KnowledgeBase, statement: Statement) -> Card:
    codes = [c.code for c in statement.caveats]
    lines = [f"**{markdown(statement.text)}**", ""]
    if statement.caveats:
        lines.append("**Caveats**")
        lines.append("")
        for c in statement.caveats:
            lines.append(
                f"- **{markdown(c.label)}**: {markdown(c.text)} Source: “{markdown(c.support)}”"
            )
        lines.append("")
    quote = statement.evidence
    lines += [
        f"> {markdown(quote.quote)}",
        "",
        f"Source: {markdown(quote.source)} (evidence: {markdown(quote.basis)}).",
        "",
    ]
    if statement.because:
        facts = "; ".join(markdown(because_text(b, kb)) for b in statement.because)
        lines += [f"Because: {facts}.", ""]
    lines.append(f"*{DISCLAIMER}*")
    index = kb.rule_index[statement.rule]
    return Card(
        uuid=card_uuid(kb.digest, index + 1 if index + 1 <= MAX_RULES else 0xFFF),
        summary=summary_of(statement.text, _labels(statement.caveats)),
        indicator=indicator(codes),  # type: ignore[arg-type]
        detail="\n".join(lines),
        source=_source(kb, statement.category),
        overrideReasons=list(OVERRIDE_REASONS),
        extension={"org.caveat.card": {"kind": "statement", "rule": statement.rule}},
    )


def _listed(items: list[str], noun: str) -> list[str]:
    out = [f"- {markdown(i)}" for i in items[:LISTED]]
    if len(items) > LISTED:
        out.append(f"- and {len(items) - LISTED:,} more {noun}")
    return out


def undecided_indicator(result: Result) -> str:
    """`warning` when a statement that may apply carries a limiting caveat (it may be off-label,
    beyond the evidence ...), else `info`."""
    codes = [c.code for u in result.undetermined for c in u.caveats]
    return "warning" if any(c not in QUALIFYING for c in codes) else "info"


def undecided_card(kb: KnowledgeBase, result: Result, mapping: FhirMapping | None) -> Card | None:
    """The info card for what the pack could not decide, or None when everything was decided."""
    parts: list[str] = []
    counts: list[str] = []
    if result.undetermined:
        limited = undecided_indicator(result) == "warning"
        what = " (some with limiting caveats)" if limited else ""
        counts.append(f"{len(result.undetermined)} undecided{what}")
        parts += ["**May apply, but the record does not settle it**", ""]
        for u in result.undetermined:
            needs = "; ".join(markdown(n) for n in u.needs)
            labels = ", ".join(markdown(label) for label in _labels(u.caveats))
            flag = f"**[{labels}]** " if labels else ""
            parts.append(f"- {flag}{markdown(u.text)} *Would be decided by:* {needs}")
        parts.append("")
    if result.not_covered:
        counts.append(f"{len(result.not_covered)} not covered")
        parts += ["**Recognised, but the source says nothing about it**", ""]
        parts += _listed(
            [f"{n.label} ({n.input}): {n.reason}" for n in result.not_covered], "items"
        )
        parts.append("")
    conditions = [u for u in result.unrecognized if u.field == "conditions"]
    medications = [u for u in result.unrecognized if u.field == "medications"]
    beyond = {  # unrecognised items past the scenario's limit, per field (the mapping's keys)
        f: sum(
            n
            for k, n in (mapping.left_out.items() if mapping else ())
            if k.startswith(f"{f}:") and "beyond the first" in k
        )
        for f in ("conditions", "medications")
    }
    if conditions or medications or any(beyond.values()):
        total = len(conditions) + len(medications) + sum(beyond.values())
        counts.append(f"{total} not recognised")
        parts += ["**Not recognised by this pack** (never taken as absent)", ""]
        if conditions or beyond["conditions"]:
            parts.append(
                f"- {len(conditions) + beyond['conditions']:,} condition(s) the pack does not "
                "recognise (for most patients, conditions unrelated to this source)"
            )
        parts += _listed([f"medication {u.input}: {u.reason}" for u in medications], "medications")
        if beyond["medications"]:
            parts.append(f"- and {beyond['medications']:,} more medications, past the limit")
        parts.append("")
    if mapping is not None and (mapping.unmapped or mapping.unmapped_more):
        total = len(mapping.unmapped) + mapping.unmapped_more
        counts.append(f"{total} unreadable")
        parts += ["**Could not be read from the FHIR record**", ""]
        parts += _listed([f"{u.where}: {u.reason}" for u in mapping.unmapped], "problems")
        if mapping.unmapped_more:
            parts.append(f"- and {mapping.unmapped_more:,} more")
        parts.append("")
    if not parts:
        return None
    parts.append(f"*{DISCLAIMER}*")
    return Card(
        uuid=card_uuid(kb.digest, INFO_CARD),
        summary=summary_of(
            f"{kb.manifest.title}: not decided for this patient: {', '.join(counts)}"
        ),
        indicator=undecided_indicator(result),  # type: ignore[arg-type]
        detail="\n".join(parts),
        source=_source(kb, None),
        extension={"org.caveat.card": {"kind": "undecided"}},
    )


def unknown_order_card(kb: KnowledgeBase, orders: list[str]) -> Card:
    """The info card for an order whose drug the pack does not recognise: it cannot tell whether
    the order is for its subject drug, and says so rather than nothing."""
    drug = kb.vocabulary.label(kb.manifest.subject) if kb.manifest.subject else "its subject drug"
    codes = ", ".join(f"{c.system} {c.code}" for c in kb.manifest.subject_codes)
    lines = [
        f"The drug of {'these orders' if len(orders) > 1 else 'this order'} was not recognised, "
        f"so this service cannot tell whether it is {markdown(drug)}, and has not evaluated the "
        f"{markdown(kb.manifest.title)} for it.",
        "",
        *_listed(orders, "orders"),
        "",
        f"The pack recognises {markdown(drug)} by name and by code"
        + (f" ({markdown(codes)}, and the products of its code lists)." if codes else "."),
        "",
        f"*{DISCLAIMER}*",
    ]
    return Card(
        uuid=card_uuid(kb.digest, INFO_CARD),
        summary=summary_of(
            f"Could not tell whether this order is for {drug}: its drug was not recognised"
        ),
        indicator="info",
        detail="\n".join(lines),
        source=_source(kb, None),
        extension={"org.caveat.card": {"kind": "unrecognised-order", "orders": orders}},
    )


def cards_for(kb: KnowledgeBase, result: Result, mapping: FhirMapping | None) -> list[Card]:
    """The cards of a result: one per statement, then the info card for what is undecided."""
    out = [statement_card(kb, s) for s in result.statements]
    undecided = undecided_card(kb, result, mapping)
    if undecided is not None:
        out.append(undecided)
    return out


def card_json(cards: list[Card]) -> dict[str, Any]:
    return {"cards": [c.model_dump(exclude_none=True) for c in cards]}
