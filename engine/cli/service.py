"""`caveat serve` (the CDS Hooks service) and `caveat feedback summary` (what clinicians did with
its cards)."""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import sys
from pathlib import Path

from ..cleantext import printable
from .common import EXIT_INPUT, EXIT_OK, Usage, load_pack, say, stderr, stdout


def loopback(host: str) -> bool:
    """Whether a listening address is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..service.app import ServiceConfig, create_app
    except ImportError as exc:
        raise Usage(
            f"the service needs {exc.name}, which comes with the service extra: "
            "pip install 'caveat[service]'"
        ) from None
    if not 0 <= args.port <= 65535:
        raise Usage(f"--port {args.port}: a port is 0..65535")
    if args.base_url is None and args.port == 0 and args.auth == "jwks":
        raise Usage(
            "with --port 0 the URL clients call is not known in advance, and their JWTs' aud "
            "must name it: give --base-url"
        )
    verifier = None
    if args.auth == "none":
        if not loopback(args.host):
            raise Usage(
                f"--auth none is allowed only on a loopback address (127.0.0.1, ::1), not "
                f"{args.host}: give --auth jwks --auth-config FILE to trust CDS clients' JWTs"
            )
    else:
        if not args.auth_config:
            raise Usage("--auth jwks needs --auth-config FILE (the trusted issuers and their keys)")
        from ..service.auth import AuthConfigError, JwtVerifier, load_auth_config

        try:
            verifier = JwtVerifier(load_auth_config(args.auth_config))
        except AuthConfigError as exc:
            raise Usage(str(exc)) from None
    packs = [load_pack(p) for p in (args.pack or [None])]
    ids = [kb.id for kb in packs]
    if len(set(ids)) != len(ids):
        raise Usage(f"two packs share an id ({', '.join(ids)}): their services would clash")
    host = f"[{args.host.strip('[]')}]" if ":" in args.host else args.host  # IPv6 in a URL
    base = (args.base_url or f"http://{host}:{args.port}").rstrip("/")
    config = ServiceConfig(
        packs=packs,
        base_url=base,
        as_of=args.as_of,
        max_body=args.max_body,
        feedback_log=Path(args.feedback_log),
        verifier=verifier,
        fetch_timeout=args.fetch_timeout,
        allow_origins=list(args.allow_origin or []),
    )
    app = create_app(config)
    err = stderr()
    for kb in packs:
        state = "released" if kb.ref.released else "changed since its release"
        err.print(
            printable(
                f"pack {kb.id} {kb.version} ({state}, digest {kb.digest[:12]}): services "
                f"{kb.id}-order-select, {kb.id}-order-sign, {kb.id}-patient-view"
            ),
            markup=False,
        )
    if verifier is None:
        err.print(
            "authentication: none (allowed because the service listens on loopback only); "
            "give --auth jwks for clients elsewhere",
            markup=False,
        )
    else:
        err.print(f"authentication: JWTs of the issuers in {args.auth_config}", markup=False)
    err.print(f"feedback log: {config.feedback_log}", markup=False)
    err.print(f"discovery: {base}/cds-services", markup=False)
    # The pack, its compiled rules and the terminology stay for the life of the process: moved
    # out of the collector's sight, so that collecting a request's garbage does not walk them
    # (the long pauses were the p99 of a request)
    gc.collect()
    gc.freeze()
    # h11 always, even where uvicorn[standard] brought httptools: the answers to malformed and
    # lying requests (tests/test_service_hostile.py) are h11's, and httptools answers a body
    # shorter than its Content-Length with plain text of its own instead of an OperationOutcome.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        http="h11",
    )
    return EXIT_OK


def cmd_feedback_summary(args: argparse.Namespace) -> int:
    from ..service.feedback import summarise

    path = Path(args.file)
    if not path.is_file():
        raise Usage(f"{args.file}: no such feedback log (caveat serve --feedback-log names it)")
    summary = summarise(path)
    if args.format == "json":
        sys.stdout.write(json.dumps(summary.model_dump(), indent=2) + "\n")
    else:
        out = stdout()
        outcomes = ", ".join(f"{n:,} {o}" for o, n in sorted(summary.outcomes.items()))
        out.print(f"{summary.records:,} feedback records: {outcomes or 'none'}", markup=False)
        if summary.per_rule:
            out.print("\nper rule:", markup=False)
            for rule, counts in summary.per_rule.items():
                line = ", ".join(f"{n:,} {o}" for o, n in sorted(counts.items()))
                out.print(printable(f"  {rule}: {line}"), markup=False)
                for why, n in summary.per_rule_reasons.get(rule, {}).items():
                    out.print(printable(f"    overridden, {why}: {n:,}"), markup=False)
        if summary.override_reasons:
            out.print("\noverride reasons:", markup=False)
            for why, n in summary.override_reasons.items():
                out.print(printable(f"  {why}: {n:,}"), markup=False)
    if summary.unreadable:
        err = stderr()
        say(err, "error", f"{len(summary.unreadable):,} line(s) could not be read:")
        for where in summary.unreadable[:20]:
            err.print(f"  {where}", markup=False)
        return EXIT_INPUT
    return EXIT_OK
