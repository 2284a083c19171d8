"""The one module that talks to durable_rules, and keeps its defects to itself.

durable-rules 2.0.28 (the last release) has defects that bite a per-scenario evaluator; each is
handled here and pinned by a test in tests/test_durable_adapter.py:

1. `delete_state` can segfault when no action ran in the session: every ruleset gets a sentinel rule
   that matches every scenario fact, so at least one action always runs.
2. `$not` patterns depend on assertion order: the compiler never emits them. A scenario is one fact
   and absence is tested with `$nex` on it, which has no order.
3. `Host.assert_facts` raises when a fact matches nothing and leaves the pending actions to a
   background thread: the C functions are called directly, and actions are drained synchronously.
4. Hard limits (64 pending alpha nodes on the match stack, 512 children per node, 128 `$nex`
   children, 256 rules ending on one node, 255 properties per fact, 1024 live sessions): the
   compiler checks each ruleset's network against `limit_problems` and splits a pack that would
   exceed them;
   a fact with too many properties is refused; one session is live per ruleset at a time.
5. Identity: a fact asserted twice in one session is dropped: each evaluation asserts its one
   fact and retracts it once the actions are drained, so the session is empty for the next one.
   (The session itself is kept: deleting and creating it costs twice what the matching does.
   When an evaluation fails part-way, its ruleset is abandoned, never deleted, and a new one made
   in its place: deleting a session in which no action ran is defect 1, and crashed the process.)
6. Errors inside actions are swallowed into the state: no Python action is ever run; firing is read
   off the action queue by rule name.
7. Loose typing ("25" < 30, True == 1): the scenario is validated strictly before it gets here.
8. Python 3.13 cannot import it: pyproject.toml requires Python < 3.13.
9. The session's own state object (`{"sid": ..., "id": "sid-...", "$s": 1}`) is matched as a fact
   too, so a pattern made only of absence tests fires on it: every pattern also requires the
   marker property that only the scenario fact carries.
10. Its JSON parser accepts an exponent only after a decimal point: `1e-05` (how Python writes
    0.00001) derails the parse and crashes the process. Facts are serialised here, with every
    float written with a decimal point (`1.0e-05`).

The default `Host` also starts timer threads that race with callers; no Host is created. Calls are
serialised per ruleset group with a lock: durable_rules keeps per-ruleset state in C and the GIL is
held during each call anyway, so threads would gain nothing from interleaving. Every live group's
lock is held across os.fork (see `_before_fork`), so a forked process (a batch worker) starts with
every lock free and every session empty, whatever other threads were doing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import durable_rules_engine as _dre

from .errors import CapacityError, EngineError

SENTINEL_RULE = "end"  # the compiler names its rules with digits only
MARK = "scn"  # carried by the scenario fact only (not by durable_rules' state fact)
GUARD = {MARK: 1}
SID = "1"

# durable_rules' compiled-in limits (src/rules/*.h), with a margin.
MAX_STACK = 60  # MAX_STACK_SIZE 64: alpha nodes pending at once while matching one fact
MAX_CHILDREN = 480  # NEXT_BUCKET_LENGTH 512: hashed children of one alpha node (more hangs)
MAX_NEX_CHILDREN = 120  # NEXT_LIST_LENGTH 128: $nex children of one alpha node
MAX_RULES_PER_NODE = 240  # BETA_LIST_LENGTH 256: rules ending on one alpha node
MAX_FACT_PROPERTIES = 250  # MAX_OBJECT_PROPERTIES 255, with sid, id and the sentinel property

_names = itertools.count(1)


class _Node:
    __slots__ = ("children", "nex", "rules")

    def __init__(self) -> None:
        self.children: dict[tuple[str, str, str], _Node] = {}
        self.nex: dict[str, _Node] = {}
        self.rules = 0


def expression_tests(expr: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(property, operator, operand) of each test of a flat single-fact expression, in the order
    durable_rules builds them: {"$and": [{"a": 1}, {"$lt": {"b": 3}}]} is [("a", "$eq", 1),
    ("b", "$lt", 3)]."""
    if "$and" in expr:
        return [t for sub in expr["$and"] for t in expression_tests(sub)]
    ((key, value),) = expr.items()
    if key.startswith("$"):
        ((prop, operand),) = value.items()
        return [(prop, key, operand)]
    return [(key, "$eq", value)]


def _tests(expr: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The tests of an expression with each operand as durable_rules keys its nodes (JSON)."""
    return [(prop, op, json.dumps(operand)) for prop, op, operand in expression_tests(expr)]


def limit_problems(expressions: Sequence[dict[str, Any]]) -> list[str]:
    """Why a ruleset made of these single-fact expressions would exceed durable_rules' limits.

    Mirrors how durable_rules builds its alpha network: one chain of tests per rule, chains sharing
    a node where the property, operator and value are equal.
    """
    root = _Node()
    guard = root.children.setdefault((MARK, "$eq", "1"), _Node())
    guard.rules += 1  # the sentinel
    for expr in expressions:
        node = guard
        for prop, op, value in _tests(expr):
            if op == "$nex":
                node = node.nex.setdefault(prop, _Node())
            else:
                node = node.children.setdefault((prop, op, value), _Node())
        node.rules += 1
    problems: list[str] = []

    def need(node: _Node) -> int:
        """Most alpha nodes this subtree can hold on durable_rules' match stack at once."""
        if len(node.children) > MAX_CHILDREN:
            problems.append(
                f"{len(node.children)} tests branch from one node (limit {MAX_CHILDREN})"
            )
        if len(node.nex) > MAX_NEX_CHILDREN:
            problems.append(
                f"{len(node.nex)} absence tests branch from one node (limit {MAX_NEX_CHILDREN})"
            )
        if node.rules > MAX_RULES_PER_NODE:
            problems.append(f"{node.rules} rules end on one node (limit {MAX_RULES_PER_NODE})")
        # Equality tests on one property cannot hold together for different values.
        equal_props = {prop for prop, op, _ in node.children if op == "$eq"}
        others = sum(1 for _, op, _ in node.children if op != "$eq")
        fan = len(equal_props) + others + len(node.nex)
        kids = [*node.children.values(), *node.nex.values()]
        if not kids:
            return 0
        return max(fan, fan - 1 + max(need(k) for k in kids))

    depth = need(root)
    if depth > MAX_STACK:
        problems.append(
            f"matching could hold {depth} nodes on durable_rules' stack (limit {MAX_STACK})"
        )
    return problems


class DurableRulesets:
    """Compiled durable_rules rulesets for one pack: each evaluation asserts one fact, drains the
    actions and retracts the fact, leaving the session empty for the next evaluation."""

    def __init__(self, definitions: Sequence[dict[str, Any]], label: str = "pack") -> None:
        self._handles: list[int] = []
        self._json: list[str] = []  # each ruleset's definition, to make it anew
        self._abandoned: list[int] = []  # rulesets whose evaluation failed: never touched again
        self._label = label
        self._lock = threading.Lock()
        with _registry_lock:  # (not while a fork is being prepared: see _before_fork)
            _live[next(_serials)] = self
        try:
            for definition in definitions:
                ruleset = {name: _guarded(rule) for name, rule in definition.items()}
                ruleset[SENTINEL_RULE] = {"all": [{"m": GUARD}]}
                self._json.append(to_json(ruleset))
                self._handles.append(_dre.create_ruleset(f"{label}-{next(_names)}", self._json[-1]))
        except _dre.error as exc:
            self.close()
            raise EngineError(f"durable_rules refused a compiled ruleset: {exc}") from None
        # (the list itself: a ruleset made anew after a failure is deleted with the rest)
        self._finalizer = weakref.finalize(self, _delete_rulesets, self._handles)

    def close(self) -> None:
        handles, self._handles = self._handles, []
        _delete_rulesets(handles)
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer.detach()

    def fire(self, fact: dict[str, Any]) -> list[str]:
        """Names of the rules the fact fires, over all rulesets (the sentinel left out)."""
        self._check_size(len(fact))
        return self.fire_text(encode_fact(fact), len(fact))

    def fire_text(self, payload: str, properties: int) -> list[str]:
        """As `fire`, for a fact already written as `fact_text` writes it, of `properties`
        properties (a caller that writes facts often can keep the text of each property)."""
        self._check_size(properties)
        fired: list[str] = []
        with self._lock:
            for index, handle in enumerate(self._handles):
                done = False
                try:
                    done = self._fire_one(handle, payload, fired)
                finally:
                    if not done:
                        self._renew(index)
        return fired

    @staticmethod
    def _check_size(properties: int) -> None:
        if properties > MAX_FACT_PROPERTIES:
            raise CapacityError(
                f"the scenario needs {properties} properties in one durable_rules fact (limit "
                f"{MAX_FACT_PROPERTIES}); list fewer conditions and medications"
            )

    def _renew(self, index: int) -> None:
        """Put a new ruleset in the place of one whose evaluation failed part-way. The old one is
        abandoned, never deleted nor cleared: no action ran in its session, and deleting that
        session is defect 1 again (it crashed the process: `free(): invalid pointer`)."""
        self._abandoned.append(self._handles[index])
        try:
            name = f"{self._label}-{next(_names)}"
            self._handles[index] = _dre.create_ruleset(name, self._json[index])
        except _dre.error as exc:
            raise EngineError(f"durable_rules could not renew a ruleset: {exc}") from None

    @staticmethod
    def _fire_one(handle: int, payload: str, fired: list[str]) -> bool:
        """Fire one ruleset; True when its session is left empty for the next evaluation."""
        try:
            code, state = _dre.assert_facts(handle, payload)
            if code == 2:
                raise EngineError("durable_rules dropped the scenario fact as already observed")
            started = _dre.start_action_for_state(handle, state)
            message = started[1] if started else None
            while message:
                # '{"<rule name>": {...}}': the name is all that is needed
                name = message[2 : message.index('"', 2)]
                if name != SENTINEL_RULE:
                    fired.append(name)
                message = _dre.complete_and_start_action(handle, state)
            if not started:
                raise EngineError("durable_rules ran no action, not even the sentinel")
            # The session lives on, empty: a new one per evaluation would cost more than matching.
            return _dre.retract_facts(handle, payload)[0] == 0
        except _dre.error as exc:
            raise EngineError(f"durable_rules failed while matching: {exc}") from None


def to_json(value: Any) -> str:
    """JSON as durable_rules' parser reads it: floats always have a decimal point (defect 10)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        text = repr(value)
        return text.replace("e", ".0e") if "e" in text and "." not in text else text
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    raise TypeError(f"cannot give durable_rules a {type(value).__name__}")


def encode_property(key: str, value: Any) -> str:
    """One property of the fact as `fact_text` joins them (`,"name":value`)."""
    return f',"{key}":true' if value is True else f',"{key}":{to_json(value)}'


def fact_text(properties: Sequence[str]) -> str:
    """The JSON durable_rules receives: one fact, marked as the scenario, in a fixed session,
    made of properties written by `encode_property`."""
    return f'[{{"sid":"{SID}","id":"f","{MARK}":1{"".join(properties)}}}]'


def encode_fact(fact: dict[str, Any]) -> str:
    """The JSON durable_rules receives for a fact given as a mapping."""
    return fact_text([encode_property(key, value) for key, value in fact.items()])


def _guarded(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule with the scenario-fact marker as its first test (defect 9)."""
    ((alias, expr),) = rule["all"][0].items()
    tests = expr.get("$and", [expr])
    return {"all": [{alias: {"$and": [GUARD, *tests]}}]}


# Fork safety. A process forked while another thread is inside `fire` would inherit that group's
# lock taken, by a thread the child does not have, and the durable_rules session half-way through
# a match: the child's first evaluation would wait for ever. So, before any fork, the forking
# thread takes every live group's lock, in the order the groups were made (two threads forking
# at once take them in the same order: no deadlock), and releases them after the fork, in the
# parent and in the child. The child starts with every lock free and, since each evaluation
# leaves its session empty before it lets go of the lock, every session empty. The registry lock,
# held from before the fork to after it, keeps a group made meanwhile from escaping this.
# (The alternatives: new locks in the child would still leave a session mid-match there; spawned
# workers would each load and compile the pack again, about half a second apiece.)
_live: weakref.WeakValueDictionary[int, DurableRulesets] = weakref.WeakValueDictionary()
_serials = itertools.count()
_registry_lock = threading.Lock()
_held = threading.local()


def _before_fork() -> None:
    _registry_lock.acquire()
    locks = [group._lock for _, group in sorted(_live.items(), key=lambda item: item[0])]
    for lock in locks:
        lock.acquire()
    _held.locks = locks


def _after_fork() -> None:
    for lock in reversed(getattr(_held, "locks", [])):
        lock.release()
    _held.locks = []
    _registry_lock.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork
    )


def _delete_rulesets(handles: list[int]) -> None:
    for handle in handles:
        with contextlib.suppress(_dre.error):
            _dre.delete_ruleset(handle)
