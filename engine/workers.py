"""Worker processes for a batch: forked as they are needed, one pipe each, and never left behind.

What a worker inherits from its parent, and what it does about it:

- Locks. A worker is forked from whichever thread runs the batch, while other threads may be
  evaluating with the same pack: durable_adapter holds every pack's lock across a fork
  (os.register_at_fork), so a worker never starts with a lock taken by a thread it does not have,
  nor with a durable_rules session half-way through a match. So is the lock under which
  terminology imports ICD-10-CM (for seconds): a worker forked half-way through that import would
  wait for ever at its first ICD-10-CM code. The lock knowledge_base takes to load the default
  pack is made anew in a worker (which is handed its pack, and loads none).
- Descriptors. A worker closes every descriptor but its own end of its pipe and standard error
  (standard input and output become /dev/null). Holding its parent's end of its own pipe, or
  another worker's, it would never see the end-of-file that says its parent is gone; holding the
  report's temporary file or the output pipe, it would keep them open.
- Its parent's death. On Linux a worker forked by the parent's main thread asks the kernel for
  SIGTERM when its parent dies (PR_SET_PDEATHSIG), then checks that the parent did not die before
  it asked. The kernel sends that signal when the *thread* that forked the worker ends, not the
  process: a worker forked by any other thread does not ask, since a batch may be read on by
  another thread once the one that started it is gone (`next` on the iterator in a short-lived
  thread). End-of-file on its pipe stops every worker too, once its parent is gone and the task
  in hand is done: the portable backstop, and the only one for those.
- Signals. SIGINT and SIGHUP are ignored: the parent gets them too (a terminal's Ctrl-C or
  hang-up reaches the whole process group) and stops its workers. SIGTERM, from the parent, from
  `kill` or from the kernel when the parent dies, makes a worker remove its spool directory and
  exit at once.

A worker writes its chunks' JSON records (for the parent to copy into the output) to slot files
in a spool directory of its own, caveat-spool-* in the temporary directory. It makes it at its
first write and removes it whenever it exits: told to stop, on SIGTERM or at its parent's death.
The parent removes it too once the worker is gone: a worker killed outright cannot.

Workers are started as the first chunk for each is sent, so a batch never has more workers than
chunks, nor more than MAX_WORKERS.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import queue
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, Pipe
from typing import Any, NoReturn

from . import knowledge_base, terminology
from .errors import BatchError

MAX_WORKERS = 64  # beyond this the parent, which reads every result, is the bottleneck anyway
STOP_SIGNALS = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_STOP = pickle.dumps(None)


def _before_fork() -> None:
    terminology._lock.acquire()  # (before durable_adapter's locks: this hook is registered later)


def _after_fork() -> None:
    terminology._lock.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork
    )


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back while cleaning up: the exception their Python handler
    raises (KeyboardInterrupt) must not cut a cleanup short and leave a process or a file behind.
    One that came is delivered afterwards. Python runs handlers only in the main thread: in any
    other there is nothing to hold back. A signal that is ignored stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if callable(handler):
            held[signum] = handler
            signal.signal(signum, lambda number, _: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


class Spool:
    """A worker's slot files: with at most a window of chunks in flight per worker, a slot is
    written again only after the parent has copied what it held. A slot is overwritten in place,
    never truncated: truncating a file and writing it again makes some file systems (ext4) write
    it out to disk at once, a disk write per chunk for files that are only ever read back."""

    def __init__(self, directory: str, slots: int) -> None:
        self.directory = directory
        self.paths = [os.path.join(directory, f"{i}.jsonl") for i in range(slots)]
        self.files: list[int] = []
        self.count = 0

    def write(self, data: bytes) -> str:
        if not self.files:
            os.mkdir(self.directory, 0o700)
            for path in self.paths:
                self.files.append(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        slot = self.count % len(self.paths)
        self.count += 1
        view, at = memoryview(data), 0
        while at < len(view):
            at += os.pwrite(self.files[slot], view[at:], at)
        return self.paths[slot]

    def remove(self) -> None:
        for fd in self.files:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.files = []
        shutil.rmtree(self.directory, ignore_errors=True)


_spool: Spool | None = None  # set in a worker


def spool() -> Spool | None:
    """This worker's spool; None outside a worker."""
    return _spool


# -- parent side ---------------------------------------------------------------------------------


class _Worker:
    def __init__(self, pid: int, pipe: Connection, spool_dir: str) -> None:
        self.pid = pid
        self.pipe = pipe
        self.spool_dir = spool_dir
        self.reaped = False
        self.status: int | None = None  # as os.waitstatus_to_exitcode: -N for signal N

    def kill(self) -> None:
        if not self.reaped:  # (once reaped, its pid may be another process's)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> None:
        """Reap the worker if it ends within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while not self.reaped:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: its status is lost
                self.reaped = True
                return
            if pid:
                self.reaped, self.status = True, os.waitstatus_to_exitcode(status)
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    def last_words(self) -> str | None:
        """The error a worker sent before it went, if it is still in the pipe."""
        with contextlib.suppress(Exception):
            while self.pipe.poll(0):
                kind, payload = pickle.loads(self.pipe.recv_bytes())
                if kind == "error":
                    return str(payload)
        return None

    def end(self) -> str:
        if not self.reaped:
            return "it does not answer"
        if self.status is None:
            return "exit status unknown"
        if self.status < 0:
            try:
                return f"killed by {signal.Signals(-self.status).name}"
            except ValueError:
                return f"killed by signal {-self.status}"
        return f"exit code {self.status}"


class Crew:
    """Worker processes, each with its own pipe and no helper thread in the parent. A worker is
    started when the first task for it is sent; each runs `serve` on the tasks it receives."""

    def __init__(self, serve: Callable[[Any], Any], slots: int) -> None:
        self.serve = serve
        self.slots = slots
        self.workers: list[_Worker] = []

    def ready(self, index: int) -> int:
        """Start worker `index` if it is the next one; its process id."""
        if index == len(self.workers):
            self._start()
        return self.workers[index].pid

    def send(self, index: int, task: bytes) -> None:
        """Send a pickled task to worker `index`, starting it first if it is the next one."""
        self.ready(index)
        try:
            self.workers[index].pipe.send_bytes(task)
        except (BrokenPipeError, ConnectionResetError):
            # (not left to propagate: a broken pipe means "the reader went away" to the CLI,
            # which is a quiet success when that reader is `head` on standard output)
            raise self._died(index) from None

    def receive(self, index: int) -> Any:
        try:
            kind, payload = pickle.loads(self.workers[index].pipe.recv_bytes())
        except (EOFError, ConnectionResetError):
            raise self._died(index) from None
        if kind == "error":
            raise BatchError(f"batch worker {index} failed: {payload}")
        return payload

    def _died(self, index: int) -> BatchError:
        worker = self.workers[index]
        failure = worker.last_words()
        if failure is not None:
            return BatchError(f"batch worker {index} failed: {failure}")
        worker.wait(5)
        return BatchError(f"batch worker {index} died ({worker.end()})")

    def restart(self, index: int) -> None:
        """Stop worker `index` (dead or alive), reap it, remove what it left, and start a fresh
        one in its place: the next task sent to `index` goes to the new worker."""
        worker = self.workers[index]
        with deferred_signals():
            worker.kill()
            worker.wait(10)
            worker.pipe.close()
            shutil.rmtree(worker.spool_dir, ignore_errors=True)
        self._start(index)

    def _start(self, replacing: int | None = None) -> None:
        index = len(self.workers) if replacing is None else replacing
        parent = os.getpid()
        name = f"caveat-spool-{parent}-{index}-{secrets.token_hex(4)}"
        spool_dir = os.path.join(tempfile.gettempdir(), name)
        ours, theirs = Pipe()
        # (asked before the fork: in the child, the thread that forked is the main thread)
        main = threading.current_thread() is threading.main_thread()
        with deferred_signals():  # a worker forked is a worker recorded, to be stopped
            try:
                pid = os.fork()
            except OSError as exc:
                ours.close()
                theirs.close()
                why = exc.strerror or str(exc)
                raise BatchError(f"cannot start batch worker {index}: {why}") from None
            if pid == 0:
                _child(theirs, spool_dir, self.serve, self.slots, parent, main)
            theirs.close()
            if replacing is None:
                self.workers.append(_Worker(pid, ours, spool_dir))
            else:
                self.workers[replacing] = _Worker(pid, ours, spool_dir)

    def close(self) -> None:
        """Tell the workers to stop, once every result is in, and wait for them; then `kill`
        (which finds them gone, and removes what they left)."""
        with deferred_signals():
            for worker in self.workers:
                with contextlib.suppress(OSError):
                    worker.pipe.send_bytes(_STOP)
            for worker in self.workers:
                worker.wait(10)
            self.kill()

    def kill(self) -> None:
        """Stop every worker now, reap it, and remove its spool directory."""
        with deferred_signals():
            for worker in self.workers:
                worker.kill()
            for worker in self.workers:
                worker.wait(10)
                worker.pipe.close()
                shutil.rmtree(worker.spool_dir, ignore_errors=True)


# -- worker side ---------------------------------------------------------------------------------


def _child(
    pipe: Connection,
    spool_dir: str,
    serve: Callable[[Any], Any],
    slots: int,
    parent: int,
    deathsig: bool,
) -> NoReturn:
    """A worker's life, in the forked process. It never returns into its parent's code, never
    runs its parent's cleanup (os._exit) and never prints: what went wrong reaches the parent
    through the pipe, or as the worker's exit status."""
    code = 1
    try:
        with contextlib.suppress(BaseException):
            _settle(pipe.fileno(), spool_dir, slots, parent, deathsig)
            _serve(pipe, serve)
            code = 0
    finally:
        if _spool is not None:
            _spool.remove()
        os._exit(code)


def _settle(keep: int, spool_dir: str, slots: int, parent: int, deathsig: bool) -> None:
    global _spool
    _spool = Spool(spool_dir, slots)
    threading.excepthook = _silent  # a worker never prints: what goes wrong goes to the parent
    sys.unraisablehook = _silent
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminated)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # (should the parent block them)
    if deathsig and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # it died before we asked: nobody would tell us
        raise SystemExit(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    for fd in _descriptors():
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    knowledge_base._default_lock = threading.Lock()  # it may have been held by another thread


def _descriptors() -> list[int]:
    """Every descriptor this process has open (and, from a listing, that of the listing)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return [int(name) for name in os.listdir(listing)]
    return list(range(min(os.sysconf("SC_OPEN_MAX"), 65536)))


def _silent(*args: Any) -> None:
    pass


def _terminated(signum: int, frame: object) -> None:
    if _spool is not None:
        _spool.remove()
    os._exit(128 + signum)


class _Unreadable(Exception):
    """A task that came through the pipe but could not be unpickled."""


def _one_line(text: str) -> str:
    """An error, for the parent's one-line message."""
    return " ".join(text.split())


def _serve(pipe: Connection, serve: Callable[[Any], Any]) -> None:
    """Serve tasks until told to stop (a None task) or the parent goes (end-of-file).

    A reader thread takes tasks off the pipe as soon as they come, so the parent never blocks
    sending a task while this worker blocks sending results it has not yet read: no deadlock,
    whatever the size of a chunk."""
    tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
    gone = threading.Event()

    def read() -> None:
        while True:
            try:
                data = pipe.recv_bytes()
            except BaseException:  # end-of-file, or anything else: the parent is lost to us
                gone.set()
                tasks.put(None)
                return
            try:
                task = pickle.loads(data)
            except BaseException as exc:  # said in the reply, the parent stops the batch
                task = _Unreadable(f"cannot read a task: {type(exc).__name__}: {exc}")
            tasks.put(task)
            if task is None:
                return

    try:
        threading.Thread(target=read, daemon=True).start()
    except RuntimeError as exc:  # no thread to be had (a process limit): say so, and stop
        pipe.send_bytes(pickle.dumps(("error", f"{type(exc).__name__}: {exc}")))
        return
    while (task := tasks.get()) is not None and not gone.is_set():
        if isinstance(task, _Unreadable):
            pipe.send_bytes(pickle.dumps(("error", _one_line(str(task)))))
            continue
        try:
            reply = pickle.dumps(("ok", serve(task)), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a bug, or a full disk: report it instead of hanging the parent
            reply = pickle.dumps(("error", _one_line(f"{type(exc).__name__}: {exc}")))
        pipe.send_bytes(reply)
