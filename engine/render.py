"""Results for people: a terminal reading a clinician can take in at a glance.

Everything is printed as rich `Text` (never read as markup), and every piece of text that can
come from the scenario or the pack is written through `cleantext.printable`: no control character
or bidirectional control reaches the terminal (see engine/cleantext.py).
"""

from __future__ import annotations

import datetime as dt

from rich.console import Console, Group
from rich.padding import Padding
from rich.text import Text

from .cleantext import printable
from .knowledge_base import KnowledgeBase
from .result import Because, Result

DISCLAIMER = "Decision support from one source document; not medical advice."


def because_text(b: Because, kb: KnowledgeBase) -> str:
    """'condition G40.A09 (ICD-10-CM) → G40.A → absence seizures → epilepsy → seizures'."""
    if b.value is None:
        return b.test
    if b.fact in ("conditions", "medications"):
        steps = [f"{b.fact[:-1]} {b.value}"]
        steps += [c for c in b.codes[1:]]
        labels = [kb.vocabulary.label(c) if c in kb.vocabulary else c for c in b.chain]
        if not labels and b.concept:
            labels = [kb.vocabulary.label(b.concept)]
        if labels and labels[0].casefold() != str(b.value).casefold():
            steps += labels
        else:
            steps += labels[1:]
        return " → ".join(steps) if len(steps) > 1 else f"{steps[0]} ({b.test})"
    if b.test.startswith("= "):
        return f"{b.fact} is {b.value}"
    return f"{b.fact} = {b.value} ({b.test})"


def _trail(status: str, reviewed: dt.date | None) -> str:
    """', reviewed 2026-11-25', ', draft, never reviewed' ...: a statement's governance."""
    out = "" if status == "active" else f", {status}"
    return out + (f", reviewed {reviewed}" if reviewed else ", never reviewed")


def _t(text: str, style: str = "") -> Text:
    return Text(printable(text), style=style)


def render_result(result: Result, kb: KnowledgeBase, console: Console) -> None:
    head = Text()
    head.append("Scenario ", style="bold")
    head.append(printable(result.scenario_id or "(no id)"), style="bold cyan")
    ref = result.knowledge_base
    head.append(printable(f"   pack {ref.id} {ref.version} ({ref.digest[:12]})"), style="dim")
    if not ref.released:
        head.append(" with changes not yet released", style="bold yellow")
    console.print(head)
    if not result.statements:
        console.print(
            Padding(
                Text("No statement of this pack applies to this scenario.", style="yellow"),
                (1, 0, 0, 2),
            )
        )
    current = None
    for s in result.statements:
        if s.category != current:
            current = s.category
            label = kb.categories[s.category].label if s.category in kb.categories else s.category
            console.print(Text("\n") + _t(label, "bold underline"))
        line = Text("  • ", style="bold")
        line.append(printable(s.text))
        line.append(printable(f"  [{s.rule}{_trail(s.status, s.reviewed)}]"), style="dim")
        parts: list[Text] = [line]
        for c in s.caveats:
            cav = Text("      ⚠ ", style="bold yellow")
            cav.append(printable(c.code), style="bold yellow")
            cav.append(printable(f": {c.text}"), style="yellow")
            parts.append(cav)
            parts.append(_t(f"        the source: “{c.support}”", "yellow"))
        quote = _t(f"      “{s.evidence.quote}”", "italic")
        quote.append(printable(f"  ({s.evidence.source}; {s.evidence.basis})"), style="dim")
        parts.append(quote)
        for b in s.because:
            parts.append(_t(f"      because {because_text(b, kb)}", "dim"))
        console.print(Group(*parts))
    if result.undetermined:
        console.print(
            Text("\nUndetermined: may apply, but the scenario does not say", style="bold underline")
        )
        for u in result.undetermined:
            line = Text("  ? ", style="bold magenta")
            line.append(printable(u.text))
            line.append(printable(f"  [{u.rule}{_trail(u.status, u.reviewed)}]"), style="dim")
            console.print(line)
            console.print(_t(f"      needs {'; '.join(u.needs)}", "magenta"))
    if result.not_covered:
        console.print(Text("\nNot covered: the pack says nothing about", style="bold underline"))
        for n in result.not_covered:
            label = f" ({n.label})" if n.label.casefold() != n.input.casefold() else ""
            console.print(_t(f"  - {n.field[:-1]} {n.input}{label}: {n.reason}"))
    if result.unrecognized:
        console.print(Text("\nUnrecognised", style="bold underline"))
        for u in result.unrecognized:
            line = _t(f"  - {u.field[:-1]} {u.input!r}: {u.reason}")
            if u.suggestions:
                line.append(printable(f"; did you mean {', '.join(u.suggestions)}?"), style="cyan")
            console.print(line)
    console.print(Text(f"\n{DISCLAIMER}", style="dim"))
