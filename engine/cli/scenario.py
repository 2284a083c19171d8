"""`caveat evaluate` and `caveat explain`: one scenario, what applies and why."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.text import Text

from ..cases import CASE_KEYS
from ..cleantext import printable
from ..errors import ScenarioError
from ..explain import explain, render_explanation
from ..knowledge_base import KnowledgeBase
from ..pipeline import run
from ..reading import DEFAULT_LIMITS
from ..render import render_result
from ..suggestions import did_you_mean
from ..yamlfile import YamlProblem
from .common import (
    EXIT_INPUT,
    EXIT_OK,
    Usage,
    load_pack,
    read_scenario_document,
    say,
    stderr,
    stdout,
    today,
)


def _scenario(name: str, limit: int) -> Any:
    """The scenario in a file (or - for stdin), its case keys left out."""
    try:
        data = read_scenario_document(name, limit)
    except YamlProblem as exc:
        raise Usage(str(exc)) from None
    if isinstance(data, list):
        raise Usage(
            f"{name} holds {len(data)} cases; one scenario is needed "
            "(run `caveat batch` for a case list)"
        )
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in CASE_KEYS}
    return data


def _invalid(name: str, exc: ScenarioError) -> int:
    err = stderr()
    say(err, "error", f"invalid scenario in {name}:")
    for problem in exc.problems:
        err.print(Text(f"  {printable(str(problem))}"))
    return EXIT_INPUT


def _fhir_scenario(args: argparse.Namespace, kb: KnowledgeBase) -> tuple[Any, Any]:
    """The scenario of a FHIR patient Bundle (or a list or prefetch object of resources), and
    the mapping that says what could not be read."""
    from ..fhir.mapping import map_patient

    limit = args.max_file_size if args.max_file_size is not None else DEFAULT_LIMITS.case_file
    try:
        data = read_scenario_document(args.file, limit)
    except YamlProblem as exc:
        raise Usage(str(exc)) from None
    if not isinstance(data, dict | list):
        raise Usage(f"{args.file}: a FHIR Bundle (a JSON object) is needed for --fhir")
    mapping = map_patient(data, kb, as_of=args.as_of or today())
    return mapping.scenario, mapping


def cmd_evaluate(args: argparse.Namespace) -> int:
    kb = load_pack(args.pack)
    mapping = None
    if args.fhir:
        data, mapping = _fhir_scenario(args, kb)
    else:
        limit = args.max_file_size
        data = _scenario(args.file, limit if limit is not None else DEFAULT_LIMITS.scenario_file)
    try:
        result = run(
            kb,
            data,
            include_background=args.background,
            include_draft=args.include_draft,
            source=args.file,
        )
    except ScenarioError as exc:
        return _invalid(args.file, exc)
    if args.json:
        out: Any = result.model_dump(mode="json")
        if mapping is not None:
            out = {"result": out, "fhir": mapping.model_dump(mode="json", exclude={"scenario"})}
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False))
        sys.stdout.write("\n")
    else:
        render_result(result, kb, stdout())
        if mapping is not None:
            _render_mapping(mapping)
    return EXIT_OK


def _render_mapping(mapping: Any) -> None:
    from ..fhir.cases import notes_of

    notes = notes_of(mapping)
    if not notes:
        return
    out = stdout()
    out.print(Text(f"\nFrom the FHIR data (as of {mapping.as_of}):", style="bold"))
    for note in notes:
        out.print(Text(f"  {printable(note)}"))


def cmd_explain(args: argparse.Namespace) -> int:
    kb = load_pack(args.pack)
    if args.rule and args.rule not in kb.rule_index:
        raise Usage(f"no rule {args.rule!r}{did_you_mean(args.rule, kb.rule_index)}")
    data = _scenario(args.file, args.max_file_size)
    try:
        explanation = explain(
            kb,
            data,
            args.rule,
            include_background=args.background,
            include_draft=args.include_draft,
        )
    except ScenarioError as exc:
        return _invalid(args.file, exc)
    if args.format == "json":
        sys.stdout.write(explanation.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(render_explanation(kb, explanation))
    return EXIT_OK
