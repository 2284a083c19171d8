"""The `caveat` command line (also `python -m engine`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from .cases import CASE_KEYS
from .errors import PackError, ScenarioError
from .evaluate import run
from .knowledge_base import KnowledgeBase, load_knowledge_base
from .render import render_result
from .scenario import read_document
from .yamlfile import YamlProblem

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


def _stdout() -> Console:
    console = Console(highlight=False)
    # wrap for a person at a terminal; never break lines for a pipe or a file
    console.soft_wrap = not console.is_terminal
    return console


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _load_pack(path: str | None) -> KnowledgeBase:
    return load_knowledge_base(path)


def _read_scenario_document(name: str) -> Any:
    if name == "-":
        return read_document("<stdin>", sys.stdin.read())  # JSON is YAML too
    return read_document(name)


def cmd_evaluate(args: argparse.Namespace) -> int:
    err = _stderr()
    kb = _load_pack(args.pack)
    try:
        data = _read_scenario_document(args.file)
    except YamlProblem as exc:
        err.print(f"[bold red]error:[/] {exc}")
        return EXIT_INPUT
    if isinstance(data, list):
        err.print(
            f"[bold red]error:[/] {args.file} holds {len(data)} cases; evaluate takes one scenario "
            "(run `caveat batch` for a case list)"
        )
        return EXIT_INPUT
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in CASE_KEYS}
    try:
        result = run(kb, data, include_background=args.background, source=args.file)
    except ScenarioError as exc:
        err.print(f"[bold red]error:[/] invalid scenario in {args.file}:")
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False)
        return EXIT_INPUT
    if args.json:
        sys.stdout.write(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
        sys.stdout.write("\n")
    else:
        render_result(result, kb, _stdout())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caveat",
        description="Evaluate patient scenarios against a drug-monograph knowledge pack "
        "(decision support for one document; not medical advice).",
    )
    parser.add_argument("--version", action="version", version="caveat 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ev = sub.add_parser("evaluate", help="evaluate one scenario file and show what applies")
    ev.add_argument(
        "file", metavar="FILE", help="scenario (or case) file, YAML or JSON; - for stdin"
    )
    ev.add_argument("--json", action="store_true", help="print the result as JSON")
    ev.add_argument(
        "--background",
        action="store_true",
        help="also show statements that hold whatever the scenario (class, pharmacology)",
    )
    ev.add_argument("--pack", metavar="DIR", help="knowledge pack directory (default: bundled)")
    ev.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        return int(args.func(args))
    except PackError as exc:
        err = _stderr()
        err.print("[bold red]error:[/] the knowledge pack cannot be loaded:")
        for p in exc.problems:
            if p.severity == "error":
                err.print(f"  {p}", markup=False)
        return EXIT_INPUT
    except KeyboardInterrupt:
        _stderr().print("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
