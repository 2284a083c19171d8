"""`caveat schema`: the JSON Schema of a scenario (input) or a result (output), for callers in other
languages. docs/schemas/ holds copies of what it prints."""

from __future__ import annotations

import argparse
import sys

from ..schemas import render
from .common import EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(render(args.name))
    return EXIT_OK
