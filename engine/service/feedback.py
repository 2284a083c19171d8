"""Feedback on cards, kept so that overrides can be reviewed.

Each feedback item becomes one JSON Lines record, appended to the log file in one write and
fsync'd before the service answers: a record is on disk once the client hears 200. A write that
fails (a full disk) is undone to the last whole record and answered 503, so the file never holds
half a record. `summarise` counts outcomes per rule and per override reason.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from ..knowledge_base import KnowledgeBase
from .cards import read_card_uuid
from .protocol import FeedbackItem


class FeedbackRecord(BaseModel):
    """One line of the feedback log."""

    received: dt.datetime = Field(description="when the service received it (UTC)")
    service: str = Field(description="the service id it was posted to")
    card: str = Field(description="the card's uuid")
    card_kind: str = Field(description="rule, info (what was undecided), or unknown")
    rule: str | None = Field(description="the rule the card stated, read from its uuid")
    pack: dict[str, str] = Field(description="id, version and digest of the pack serving it")
    outcome: str = Field(description="accepted or overridden")
    override_reason: str | None = Field(description="the reason's code (or display), if any")
    override_display: str | None = Field(description="the reason's display, if any")
    user_comment: str | None = Field(description="the user's comment, if any")
    accepted_suggestions: list[str] = Field(description="ids of the suggestions accepted")
    outcome_timestamp: dt.datetime = Field(description="when the user acted, as the client said")


class FeedbackLog:
    """An append-only JSON Lines file, safe across threads of one process and, through
    O_APPEND and one write per batch, across processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(self, kb: KnowledgeBase, service: str, items: list[FeedbackItem]) -> int:
        now = dt.datetime.now(dt.UTC)
        lines = []
        for item in items:
            kind, rule = read_card_uuid(item.card, kb)
            reason = item.overrideReason
            coding = reason.reason if reason else None
            record = FeedbackRecord(
                received=now,
                service=service,
                card=item.card,
                card_kind=kind,
                rule=rule,
                pack={"id": kb.id, "version": kb.version, "digest": kb.digest},
                outcome=item.outcome,
                override_reason=(coding.code or coding.display) if coding else None,
                override_display=coding.display if coding else None,
                user_comment=reason.userComment if reason else None,
                accepted_suggestions=[s.id for s in item.acceptedSuggestions or []],
                outcome_timestamp=item.outcomeTimestamp,
            )
            lines.append(orjson.dumps(record.model_dump(mode="json")) + b"\n")
        self._append(b"".join(lines))
        return len(lines)

    def _append(self, data: bytes) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            if created:  # the new name must survive a crash too: sync its directory
                _sync_directory(self.path.parent)
            try:
                size = os.fstat(fd).st_size
                try:
                    view = memoryview(data)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, size)  # no half record left behind
                    raise
            finally:
                os.close(fd)


def _sync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # (a file system that cannot sync a directory)
    finally:
        os.close(fd)


class FeedbackSummary(BaseModel):
    """Outcomes counted per rule and per override reason."""

    records: int = Field(description="feedback records read")
    unreadable: list[str] = Field(description="lines that could not be read, as file:line")
    outcomes: dict[str, int] = Field(description="outcome -> count")
    per_rule: dict[str, dict[str, int]] = Field(
        description="rule id (or '(info card)', '(unknown card)') -> outcome -> count"
    )
    override_reasons: dict[str, int] = Field(description="override reason -> count")
    per_rule_reasons: dict[str, dict[str, int]] = Field(
        description="rule id -> override reason -> count"
    )


def summarise(path: str | Path) -> FeedbackSummary:
    """Count a feedback log's outcomes; a line that cannot be read is named, not skipped."""
    outcomes: Counter[str] = Counter()
    per_rule: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    rule_reasons: dict[str, Counter[str]] = {}
    bad: list[str] = []
    records = 0
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data: dict[str, Any] = orjson.loads(line)
                record = FeedbackRecord.model_validate(data)
            except (orjson.JSONDecodeError, ValueError):
                bad.append(f"{path}:{number}")
                continue
            records += 1
            rule = record.rule or (
                "(info card)" if record.card_kind == "info" else "(unknown card)"
            )
            outcomes[record.outcome] += 1
            per_rule.setdefault(rule, Counter())[record.outcome] += 1
            if record.outcome == "overridden":
                why = record.override_display or record.override_reason or "(no reason given)"
                reasons[why] += 1
                rule_reasons.setdefault(rule, Counter())[why] += 1
    return FeedbackSummary(
        records=records,
        unreadable=bad,
        outcomes=dict(outcomes),
        per_rule={r: dict(c) for r, c in sorted(per_rule.items())},
        override_reasons=dict(reasons.most_common()),
        per_rule_reasons={r: dict(c.most_common()) for r, c in sorted(rule_reasons.items())},
    )
