"""``Rule.triggers``: a hook with a trigger is called only on the nodes its trigger admits, so every node it acts on
must be one of them. Checked against the full computation: every hook with a trigger is also called on the nodes
its trigger turns away (by a dispatcher that does both), on the fixture and verify programs and the Haiku programs
the tests write inline, for both targets, and must do nothing there."""

from __future__ import annotations

import ast
import textwrap
import warnings
from pathlib import Path
from typing import Any

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from h2f import codemod
from h2f.analysis import FileAnalysis
from h2f.context import LeftInPlace, MigrationContext, RuleDispatcher
from h2f.engine import MigrationError, Options, migrate_source
from h2f.rule import Rule, Trigger, all_rules
from h2f.traversal import fast_transform

ROOT = Path(__file__).resolve().parent.parent


def _programs() -> list[tuple[str, str]]:
    """(path, source) of the fixture and verify programs, and of the Haiku programs the tests write inline."""
    files = sorted([*ROOT.glob("fixtures/*/*/before.py"), *ROOT.glob("tests/verify_data/**/*.py")])
    found = [(path.relative_to(ROOT).as_posix(), path.read_text()) for path in files]
    for test in sorted(ROOT.glob("tests/test_*.py")):
        with warnings.catch_warnings():  # (a test's code may be one Python warns about)
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(test.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "haiku" in node.value:
                if "\n" in node.value:
                    found.append((f"tests/{test.name}:{node.lineno}", textwrap.dedent(node.value)))
    return found


PROGRAMS = _programs()
TRIGGERED = (cst.Name, cst.Attribute, cst.Call)


def _state(dispatcher: RuleDispatcher, rule: Rule) -> tuple[Any, ...]:
    """What a hook that acts changes: the context's records, the imports asked for, the rule's own attributes."""
    ctx = dispatcher.ctx
    scratch = tuple(sorted((key, len(value)) for key, value in ctx.codemod.scratch.items()))
    own = tuple(
        sorted((key, len(value) if hasattr(value, "__len__") else id(value)) for key, value in vars(rule).items())
    )
    records = (ctx.diagnostics, ctx.reported, ctx.left_in_place, ctx.announced, ctx.constructions)
    return (*map(len, records), scratch, own)


class _CheckingDispatcher(RuleDispatcher):
    """The rule pass, which also offers each Name, Attribute and Call to the hooks whose trigger turns it away,
    and notes those that act on it."""

    acted: list[str] = []

    def busy(self) -> None:
        return None  # every node, not only those the pass enters (:meth:`RuleDispatcher.busy`)

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        if type(original_node) in TRIGGERED:
            name = f"leave_{type(original_node).__name__}"
            admitted = self._hooks_for(name, *self._key(original_node))
            for hook in self._hooks_for(name):
                if hook in admitted:
                    continue
                before = _state(self, hook.__self__)
                try:
                    result = hook(original_node, updated_node)
                except LeftInPlace:
                    result = "raised LeftInPlace"
                if result is not None or _state(self, hook.__self__) != before:
                    code = cst.Module([]).code_for_node(original_node)
                    self.acted.append(f"{type(hook.__self__).__name__}.{name} on {code!r} in {self.ctx.path}")
        return super().on_leave(original_node, updated_node)


def test_triggers_name_hooks_the_rules_have() -> None:
    for rule in all_rules():
        for hook, trigger in rule.triggers.items():
            assert hook in {f"leave_{kind.__name__}" for kind in TRIGGERED}, (rule, hook)
            assert hasattr(rule, hook) and isinstance(trigger, Trigger), (rule, hook)


def _migrate_programs(target: str) -> None:
    """Migrate every program of the corpus to ``target`` (those h2f refuses too)."""
    for path, source in PROGRAMS:
        try:
            with warnings.catch_warnings():  # (compiling a migrated program Python warns about)
                warnings.simplefilter("ignore", SyntaxWarning)
                migrate_source(source, Options(target=target), path=path)
        except MigrationError:
            pass


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_every_node_a_hook_acts_on_is_one_its_trigger_admits(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codemod, "RuleDispatcher", _CheckingDispatcher)
    monkeypatch.setattr(_CheckingDispatcher, "acted", [])
    _migrate_programs(target)
    assert _CheckingDispatcher.acted == []


class _PruningCheckDispatcher(RuleDispatcher):
    """The rule pass entering every node, which notes each node a hook is offered that the pass, entering only
    :meth:`RuleDispatcher.busy` nodes, would not have entered (nor recorded as a construction)."""

    missed: list[str] = []
    idle_nodes = 0

    def busy(self) -> None:
        self._entered = super().busy()
        self._idle: list[bool] = []
        return None

    def on_visit(self, node: cst.CSTNode) -> bool:
        idle = self._entered is not None and (id(node) not in self._entered or bool(self._idle and self._idle[-1]))
        self._idle.append(idle)
        type(self).idle_nodes += idle
        if idle and self._hooks_for(f"visit_{type(node).__name__}"):
            self._miss("visit", node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        name = f"leave_{type(original_node).__name__}"
        key = self._key(original_node) if type(original_node) in TRIGGERED else ()
        constructions = len(self.ctx.constructions)
        result = super().on_leave(original_node, updated_node)
        if self._idle.pop() and (self._hooks_for(name, *key) or len(self.ctx.constructions) != constructions):
            self._miss("leave", original_node)
        return result

    def _miss(self, hook: str, node: cst.CSTNode) -> None:
        code = cst.Module([]).code_for_node(node)
        self.missed.append(f"{hook} {type(node).__name__} {code!r} in {self.ctx.path}")


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_the_pass_enters_every_node_a_hook_is_offered(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codemod, "RuleDispatcher", _PruningCheckDispatcher)
    monkeypatch.setattr(_PruningCheckDispatcher, "missed", [])
    monkeypatch.setattr(_PruningCheckDispatcher, "idle_nodes", 0)
    _migrate_programs(target)
    assert _PruningCheckDispatcher.missed == []
    assert _PruningCheckDispatcher.idle_nodes > 10_000  # (most nodes: the check is not idle itself)


class _AnnouncingRule(Rule):
    """Announces, from the module's ``visit_`` hook (during the pass), every call of the file, and notes those
    its ``leave_Call`` hook sees."""

    code = "H2F999"
    haiku_apis = ()
    triggers = {"leave_Call": Trigger.ANNOUNCED}

    def __init__(self, ctx: MigrationContext) -> None:
        super().__init__(ctx)
        self.seen: list[str] = []

    def visit_Module(self, node: cst.Module) -> None:
        self.announce(self.ctx.analysis.nodes_of(cst.Call))

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> None:
        self.seen.append(cst.Module([]).code_for_node(original_node))


def test_the_pass_enters_the_nodes_announced_during_it() -> None:
    module = cst.parse_module("def f(x):\n    return g(x + 1)\n")
    wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
    analysis = FileAnalysis.build(wrapper)
    ctx = MigrationContext("f.py", Options(), wrapper, analysis, CodemodContext())
    rule = _AnnouncingRule(ctx)
    dispatcher = RuleDispatcher(ctx, [rule])
    busy = dispatcher.busy()
    assert busy is not None and id(analysis.nodes_of(cst.Call)[0]) not in busy  # (nothing to enter before)
    assert fast_transform(module, dispatcher, dispatcher.inert_types(), busy) is module
    assert rule.seen == ["g(x + 1)"]
