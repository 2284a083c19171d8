"""Resident memory over many evaluations of text never seen before: do the caches stay bounded?

    python bench/memory.py              # 200,000 evaluations (a few minutes)
    python bench/memory.py --n 20000    # fewer: a smoke run

Every scenario is new text: a made-up label, a known name spelt with fresh case and spacing, a
fresh typo of a known drug (which asks for suggestions), a valid ICD-10-CM code drawn from the
whole code set, a code shaped like ICD-10-CM that is not one, and an RxNorm code, plus a fresh id.
Whatever the engine remembers per spelling or per code is filled by this input, so resident memory
that keeps growing means a cache without a bound. The process warms up first (the pack compiled,
ICD-10-CM loaded, every cache filled to its bound), and the figure is the growth after that.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import string
import time
from typing import Any

from engine import KnowledgeBase, evaluate, load_knowledge_base, terminology


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def _word(rng: random.Random, low: int = 4, high: int = 14) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(low, high)))


def _respell(rng: random.Random, name: str) -> str:
    """The name with fresh case and spacing: recognised, but a spelling not seen before."""
    out = "".join(c.upper() if rng.random() < 0.3 else c for c in name)
    return out.replace(" ", " " * rng.randint(1, 3)) + " " * rng.randint(0, 3)


def _typo(rng: random.Random, name: str) -> str:
    i = rng.randrange(len(name))
    return name[:i] + rng.choice(string.ascii_lowercase) + name[i + 1 :]


class NewText:
    """Scenarios made of text and codes that (almost) never repeat."""

    def __init__(self, kb: KnowledgeBase, seed: int = 7) -> None:
        import simple_icd_10_cm

        self.rng = random.Random(seed)
        vocab = kb.vocabulary
        self.conditions = [c.label for c in vocab.concepts.values() if c.kind == "condition"]
        self.drugs = [c.label for c in vocab.concepts.values() if c.kind == "drug"]
        self.icd = [c for c in simple_icd_10_cm.get_all_codes(False) if "-" not in c]

    def scenario(self, i: int) -> dict[str, Any]:
        rng = self.rng
        shaped = (
            rng.choice(string.ascii_uppercase) + f"{rng.randrange(100):02d}." + _word(rng, 1, 4)
        )
        return {
            "id": f"new-{i}-{_word(rng)}",
            "patient": {"age": rng.randint(0, 100)},
            "conditions": [
                f"{_word(rng)} {_word(rng)}",
                _respell(rng, rng.choice(self.conditions)),
                {"code": rng.choice(self.icd), "system": "ICD-10-CM"},
                {"code": shaped.upper(), "system": "ICD-10-CM"},
            ],
            "medications": [
                _typo(rng, rng.choice(self.drugs)),
                _respell(rng, rng.choice(self.drugs)),
                {"code": str(rng.randrange(10**9)), "system": "RxNorm"},
            ],
            "therapy": {"line": rng.randint(1, 5), "intent": "long-term"},
        }


def cache_sizes(kb: KnowledgeBase) -> dict[str, int]:
    vocab = kb.vocabulary
    sizes = {
        "vocabulary._seen": len(vocab._seen),
        "vocabulary._suggested": len(vocab._suggested),
        "vocabulary._could_be_code": len(vocab._could_be_code),
        "knowledge_base.reason_cache": len(kb.reason_cache),
    }
    for name in ("icd_is_valid", "icd_description", "icd_lineage"):
        sizes[f"terminology.{name}"] = getattr(terminology, name).cache_info().currsize
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="evaluations (default 200,000)")
    parser.add_argument(
        "--warm", type=int, default=30_000, help="evaluations first, not measured (default 30,000)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    kb = load_knowledge_base()
    text = NewText(kb)
    evaluate(text.scenario(-1))  # ICD-10-CM loaded
    gc.collect()
    loaded = rss_mb()
    warm = args.warm
    for i in range(warm):
        evaluate(text.scenario(i))
    gc.collect()
    start, began = rss_mb(), time.perf_counter()
    marks: dict[int, float] = {}
    step = max(1, args.n // 10)
    for i in range(args.n):
        evaluate(text.scenario(warm + i))
        if (i + 1) % step == 0:
            marks[i + 1] = round(rss_mb(), 1)
    gc.collect()
    end = rss_mb()
    figures = {
        "evaluations": args.n,
        "seconds": round(time.perf_counter() - began, 1),
        "loaded_mb": round(loaded, 1),
        "start_mb": round(start, 1),
        "end_mb": round(end, 1),
        "growth_mb": round(end - start, 1),
        "marks_mb": marks,
        "caches": cache_sizes(kb),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"memory over {args.n:,} evaluations of new text: {start:.1f} MB -> {end:.1f} MB "
        f"(growth {end - start:+.1f} MB, {figures['seconds']} s); {loaded:.1f} MB before the "
        f"{warm:,} warm-up evaluations"
    )
    print("  resident MB every tenth: " + ", ".join(f"{v:.1f}" for v in marks.values()))
    print("  cache entries: " + ", ".join(f"{k} {v:,}" for k, v in figures["caches"].items()))


if __name__ == "__main__":
    main()
