"""Cards built from results: what a summary keeps when a statement is too long for one, and the
indicator of the card for what is undecided."""

from __future__ import annotations

from engine import KnowledgeBase, evaluate
from engine.service.cards import QUALIFYING, cards_for, indicator, summary_of


def test_every_statement_of_the_pack_keeps_its_caveats_in_its_summary(kb: KnowledgeBase):
    for i, rule in enumerate(kb.rules):
        notes = kb.caveat_notes[i]
        labels = [c.label for c in notes if c.code not in QUALIFYING]
        labels += [c.label for c in notes if c.code in QUALIFYING]
        summary = summary_of(rule.statement, labels)
        assert len(summary) < 140, rule.id
        whole = " ".join(rule.statement.split())
        if summary != whole:  # cut: then it starts with every caveat, the limiting ones first
            head = "; ".join(labels)
            if head:
                assert summary.startswith(head[:1].upper() + head[1:] + ": "), (rule.id, summary)
            assert summary.endswith("…")


def test_a_cut_summary_of_an_off_label_statement_says_off_label(kb: KnowledgeBase):
    result = evaluate({"conditions": ["social phobia"]})
    card = next(
        c for c in cards_for(kb, result, None) if "other-anxiety-disorders-off-label" in str(c)
    )
    assert card.summary.startswith("Off-label: ") and card.indicator == "warning"


def test_the_indicator_mapping():
    assert indicator([]) == "info"
    assert indicator(["not-placebo-controlled", "low-dose", "hedged"]) == "info"
    for limiting in ("off-label", "third-line", "beyond-evidence", "tolerance", "short-term"):
        assert indicator(["hedged", limiting]) == "warning"
    assert indicator(["a-code-no-one-knows"]) == "warning"


def test_the_undecided_card_warns_when_what_may_apply_is_limited(kb: KnowledgeBase):
    # restless legs syndrome with the line of therapy unknown: "before third line" (beyond the
    # evidence) may apply
    result = evaluate({"conditions": ["restless legs syndrome"]})
    assert "rls-before-third-line" in [u.rule for u in result.undetermined]
    card = cards_for(kb, result, None)[-1]
    assert card.extension == {"org.caveat.card": {"kind": "undecided"}}
    assert card.indicator == "warning" and "some with limiting caveats" in card.summary
    assert "**[third line, beyond the evidence]**" in card.detail
    # acute seizures with the patient's age unknown: nothing limiting may apply
    quiet = evaluate({"conditions": ["epilepsy"], "therapy": {"intent": "acute"}})
    cards = cards_for(kb, quiet, None)
    undecided = [c for c in cards if c.extension == {"org.caveat.card": {"kind": "undecided"}}]
    assert all(c.indicator == "info" for c in undecided)
