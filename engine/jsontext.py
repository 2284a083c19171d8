"""Results as JSON text, by orjson: the same bytes as pydantic's `model_dump_json`, sooner.

A batch writes some 4 KB of JSON per case, and pydantic's serialiser took longer over it than
the matching did. orjson writes a model as the mapping of its fields (their declared order is
the order of its `__dict__`), and writes what a knowledge base holds for its whole life (each
rule's caveats and evidence, the pack's reference) from text made once. tests/test_fast_path.py
holds `dumps` to `model_dump_json` byte for byte.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel

if TYPE_CHECKING:
    from .knowledge_base import KnowledgeBase


def fragments(kb: KnowledgeBase) -> dict[int, tuple[object, orjson.Fragment]]:
    """The JSON text of what `kb` holds for its life, by the identity of the object (kept
    beside its text: an id is only an object's while it lives, and these live as long as kb)."""
    found = kb.__dict__.get("_json_fragments")
    if found is None:
        owned: list[BaseModel] = [kb.ref, *kb.evidence_notes]
        owned += [note for notes in kb.caveat_notes for note in notes]
        found = {id(m): (m, orjson.Fragment(m.model_dump_json())) for m in owned}
        kb.__dict__["_json_fragments"] = found
    return found


def dumps(value: Any, kb: KnowledgeBase | None = None) -> bytes:
    """`value` (models, and mappings and lists of them) as compact JSON; the parts that `kb`
    made once are written from their text."""
    known = fragments(kb) if kb is not None else {}

    def default(model: Any) -> Any:
        if isinstance(model, BaseModel):
            hit = known.get(id(model))
            if hit is not None and hit[0] is model:
                return hit[1]
            return model.__dict__
        raise TypeError(f"cannot write a {type(model).__name__} as JSON")

    return orjson.dumps(value, default=default)
