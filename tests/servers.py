"""Real servers for the tests: `caveat serve` in a process of its own on a free loopback port,
and small HTTP servers (a fake FHIR server, a JWKS host) in a thread. Nothing is mocked: the tests
call these over HTTP with httpx."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-25"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A running `caveat serve`."""

    url: str
    process: subprocess.Popen
    feedback_log: Path
    log: Path

    def client(self, **kw: Any) -> httpx.Client:
        """A client that sends bodies as JSON (the service refuses others with 415)."""
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers, **kw)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(tmp: Path, *args: str, ready: bool = True, port: int | None = None) -> Iterator[Served]:
    """`caveat serve --as-of 2026-11-25` on `port` (default: a free one), until the block ends."""
    port = port or free_port()
    feedback = tmp / "feedback.jsonl"
    log = tmp / f"serve-{port}.log"
    command = [
        sys.executable, "-m", "engine", "serve", "--port", str(port), "--as-of", AS_OF,
        "--feedback-log", str(feedback), *args,
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", process, feedback, log)
    try:
        if ready:
            _wait(served)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(served: Served, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if served.process.poll() is not None:
            raise RuntimeError(
                f"caveat serve exited {served.process.returncode}:\n{served.output()}"
            )
        try:
            if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"caveat serve did not become ready:\n{served.output()}")


@dataclass
class Seen:
    """A request a test server received."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Small:
    """A small HTTP server in a thread: `routes` maps a path (with its query) to a handler
    returning (status, JSON data); every request is recorded in `seen`."""

    routes: dict[str, Callable[[Seen], tuple[int, Any]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    delay: float = 0.0


@contextmanager
def small_server(
    routes: dict[str, Callable[[Seen], tuple[int, Any]]] | None = None,
) -> Iterator[Small]:
    state = Small(routes=dict(routes or {}))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen = Seen("GET", self.path, {k.lower(): v for k, v in self.headers.items()})
            state.seen.append(seen)
            if state.delay:
                time.sleep(state.delay)
            handler = state.routes.get(self.path)
            status, data = handler(seen) if handler else (404, {"resourceType": "OperationOutcome"})
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
