"""The traversals of h2f/traversal.py (the nodes, hooks and results of libcst's own traversal, at less cost) and
the expressions rules build from text."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import haiku
import libcst as cst
import libcst.matchers as m
import pytest

import h2f.traversal as traversal
from h2f.syntax import expr, replace_matching
from h2f.traversal import TOKENS, TypeDispatch, children, fast_transform, fast_walk, walk

FIXTURES = sorted((Path(__file__).resolve().parent.parent / "fixtures").glob("*/*/before.py"))
#: dm-haiku's own sources (not its tests): real code with every import style, decorators, f-strings.
HAIKU_SOURCES = sorted(path for path in Path(haiku.__file__).parent.rglob("*.py") if not path.name.endswith("_test.py"))
SAMPLES = FIXTURES[:8] + HAIKU_SOURCES[1::6]
#: libcst visits an f-string's format spec only when there is one: the walk must not learn that it has none.
F_STRINGS = 'f"{y}"\nf"{x!r:>{width}}"\n'


def _forget_fields() -> None:
    traversal._CHILD_FIELDS.clear()
    traversal._UNSEEN_FIELDS.clear()
    traversal._FIELD_DEFAULTS.clear()
    traversal._KNOWN_FIELDS.clear()


def _sample_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.mark.parametrize("path", SAMPLES, ids=_sample_id)
def test_fast_walk_visits_what_libcst_visits(path: Path) -> None:
    """The analysis walk sees every node libcst's traversal sees, in the same order."""
    module = cst.parse_module(F_STRINGS + path.read_text())
    _forget_fields()
    ours, theirs = _Collector(), _Collector()
    fast_walk(module, ours)
    module.visit(theirs)
    assert [id(node) for node in ours.nodes] == [id(node) for node in theirs.nodes]
    assert ours.spans == theirs.spans
    # walk() leaves the tokens out (everything inside a token is a token too)
    assert [id(node) for node in walk(module)] == [id(node) for node in theirs.nodes if type(node) not in TOKENS]
    for node in theirs.nodes[::7]:
        assert [id(child) for child in children(node)] == [id(child) for child in node.children]


class _Collector(cst.CSTVisitor):
    """Every node visited, in order, and the span of each node's subtree in that order."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[cst.CSTNode] = []
        self.spans: dict[int, tuple[int, int]] = {}
        self._starts: list[int] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self._starts.append(len(self.nodes))
        self.nodes.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.spans[id(original_node)] = (self._starts.pop(), len(self.nodes))

    @classmethod
    def of(cls, module: cst.Module) -> _Collector:
        """The collector after libcst's own traversal of ``module``."""
        collector = cls()
        module.visit(collector)
        return collector


class _Rewriter(cst.CSTTransformer):
    """A transformer with every kind of result a rule gives: a replaced node, a removed statement, a statement
    flattened into two, a removed optional child (a return value), a removed ``MaybeSentinel`` child (a
    trailing comma); it records each hook call, with the ``updated_node`` it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int, str]] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.calls.append(("visit", id(node), ""))
        return not isinstance(node, cst.Lambda)  # a subtree left unentered

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> object:
        code = ""
        if isinstance(updated_node, (cst.BaseExpression, cst.BaseStatement)):  # others need their parent's codegen
            code = cst.Module([]).code_for_node(updated_node)
        if isinstance(updated_node, (cst.Module, cst.IndentedBlock)):  # an emptied line codes as an empty block does
            code += f" ({len(updated_node.body)} statements)"
        self.calls.append(("leave", id(original_node), code))
        return super().on_leave(original_node, updated_node)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return updated_node.with_changes(value="renamed") if updated_node.value == "self" else updated_node

    def leave_Pass(self, original_node: cst.Pass, updated_node: cst.Pass) -> cst.RemovalSentinel:
        return cst.RemovalSentinel.REMOVE

    def leave_Return(self, original_node: cst.Return, updated_node: cst.Return) -> cst.Return:
        return updated_node.with_changes(value=None) if isinstance(updated_node.value, cst.Name) else updated_node

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        return updated_node.with_changes(comma=cst.MaybeSentinel.DEFAULT)

    def leave_Comma(self, original_node: cst.Comma, updated_node: cst.Comma) -> cst.Comma | cst.RemovalSentinel:
        double_space = getattr(original_node.whitespace_after, "value", None) == "  "
        return cst.RemovalSentinel.REMOVE if double_space else updated_node

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.CSTNode:
        if updated_node.body and isinstance(updated_node.body[0], cst.Import):
            return cst.FlattenSentinel([updated_node, cst.parse_statement("imported = True\n")])
        return updated_node


@pytest.mark.parametrize("path", SAMPLES, ids=_sample_id)
def test_fast_transform_gives_what_libcst_gives(path: Path) -> None:
    """Every hook is called on the same node in the same order, with an ``updated_node`` of the same code, and the
    rewritten module is the same."""
    module = cst.parse_module(F_STRINGS + "f(a,  b)\nif x:\n    pass\n" + path.read_text())
    _forget_fields()
    ours, theirs = _Rewriter(), _Rewriter()
    result = fast_transform(module, ours)
    expected = module.visit(theirs)
    assert ours.calls == theirs.calls
    assert result.code == expected.code
    assert result.code != module.code  # the rewriter did rewrite


@pytest.mark.parametrize("path", SAMPLES[:4], ids=_sample_id)
def test_fast_transform_skips_what_it_is_told_to_and_nothing_else(path: Path) -> None:
    """Told to skip the tokens the transformer has no hook for, the pass makes the same calls on every other node
    and gives the same module."""
    module = cst.parse_module(F_STRINGS + "f(a,  b)\n" + path.read_text())
    skip = TOKENS - {cst.Comma}
    ours, theirs = _Rewriter(), _Rewriter()
    result = fast_transform(module, ours, skip)
    expected = module.visit(theirs)
    tokens = {id(node) for node in _Collector.of(module).nodes if type(node) in skip}
    assert ours.calls == [call for call in theirs.calls if call[1] not in tokens]
    assert result.code == expected.code


class _Hooks:
    """``visit_``/``leave_`` hooks of every kind (a visit that stops the descent, one that returns None, a
    replacement, a removal), each call recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        self.calls.append(("visit_Lambda", id(node)))
        return False

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(("visit_Call", id(node)))

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        self.calls.append(("leave_Name", id(original_node)))
        return updated_node.with_changes(value="renamed") if updated_node.value == "self" else updated_node

    def leave_Pass(self, original_node: cst.Pass, updated_node: cst.Pass) -> cst.RemovalSentinel:
        self.calls.append(("leave_Pass", id(original_node)))
        return cst.RemovalSentinel.REMOVE


class _ByName(_Hooks, cst.CSTTransformer):
    """The hooks found by libcst's ``on_visit``/``on_leave`` (by name)."""


class _ByType(_Hooks, TypeDispatch):
    """The same hooks found by type."""


@pytest.mark.parametrize("path", SAMPLES, ids=_sample_id)
def test_type_dispatch_calls_the_hooks_libcst_calls(path: Path) -> None:
    """A :class:`TypeDispatch` transformer makes the hook calls libcst's dispatch makes, with the same result."""
    module = cst.parse_module("if x:\n    pass\nf(lambda self: self)\n" + path.read_text())
    by_name, by_type = _ByName(), _ByType()
    expected = fast_transform(module, by_name, TOKENS)
    result = fast_transform(module, by_type, TOKENS)
    assert by_type.calls == by_name.calls
    assert {name for name, _ in by_type.calls} == {"visit_Lambda", "visit_Call", "leave_Name", "leave_Pass"}
    assert result.code == expected.code


def test_fast_transform_returns_untouched_subtrees_as_they_were() -> None:
    """A transformer that changes nothing gets the module itself back; a change rebuilds only its ancestors."""
    module = cst.parse_module("def f(x):\n    return x + 1\n\nclass C:\n    y = 2\n")
    assert fast_transform(module, cst.CSTTransformer()) is module

    class Two(cst.CSTTransformer):
        def leave_Integer(self, original_node: cst.Integer, updated_node: cst.Integer) -> cst.Integer:
            return updated_node.with_changes(value="3") if updated_node.value == "2" else updated_node

    result = fast_transform(module, Two())
    assert result.code == "def f(x):\n    return x + 1\n\nclass C:\n    y = 3\n"
    assert result.body[0] is module.body[0]
    assert result.body[1] is not module.body[1]


def test_fast_transform_enters_only_the_nodes_it_is_told_to() -> None:
    """With ``only``, a node whose id is not in it when the traversal reaches it is neither visited nor changed;
    the transformer may add to it on the way."""
    module = cst.parse_module("a = b + 1\nc = d\n")
    first, second = module.body
    seen: list[str] = []
    visited: list[str] = []

    class Names(cst.CSTTransformer):
        def on_visit(self, node: cst.CSTNode) -> bool:
            visited.append(type(node).__name__)
            if node is first:  # the second line's statement, now: its line is in ``only`` already
                only.update(map(id, walk(second.body[0])))
            return True

        def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
            seen.append(original_node.value)
            return cst.Name(original_node.value.upper())

    only = {id(module), id(first), id(second), id(first.body[0])}
    result = fast_transform(module, Names(), TOKENS, only)
    assert seen == ["c", "d"]
    line = ["SimpleStatementLine", "Assign"]
    assert visited == ["Module", *line, *line, "AssignTarget", "Name", "Name"]
    assert result.code == "a = b + 1\nC = D\n"
    assert result.body[0] is first


def test_fast_transform_refuses_what_libcst_refuses() -> None:
    """A required child cannot be removed (libcst raises too); the caller hears of it."""

    class RemoveNames(cst.CSTTransformer):
        def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.RemovalSentinel:
            return cst.RemovalSentinel.REMOVE

    module = cst.parse_module("x.y\n")
    with pytest.raises(TypeError, match="required"):
        fast_transform(module, RemoveNames())


@pytest.mark.parametrize(
    "source", ["nn.Dense", "jax.random.split", "x", "True", "None", "f(x)", "a[0].b", "nn.Dense(3)"]
)
def test_expr_builds_what_the_parser_builds(source: str) -> None:
    """Generated code is built from expressions; a dotted name is built without the parser, to the same tree."""
    assert expr(source).deep_equals(cst.parse_expression(source))


@pytest.mark.parametrize("path", SAMPLES[:6], ids=_sample_id)
def test_replace_matching_gives_what_libcst_replace_gives(path: Path) -> None:
    """Rules rewrite ``x.shape[-1]``-like patterns with replace_matching: the same result as ``m.replace``, with
    a fixed node or a function of the rewritten node, nested matches included."""
    module = cst.parse_module("hk.Linear(x.shape[-1])(y.shape[-1])\nf(a.b.c)\n" + path.read_text())
    shape = m.Subscript(m.Attribute(m.Name(), m.Name("shape")))
    attribute = m.Attribute(attr=m.Name("b") | m.Name("c"))  # not in import statements (they take no calls)
    assert replace_matching(module, shape, cst.Name("W")).code == m.replace(module, shape, cst.Name("W")).code
    wrapped = replace_matching(module, attribute, lambda node: cst.Call(cst.Name("w"), [cst.Arg(node)]))
    expected = m.replace(module, attribute, lambda node, _: cst.Call(cst.Name("w"), [cst.Arg(node)]))
    assert wrapped.code == expected.code
    assert "w(w(a.b).c)" in wrapped.code


def test_type_tests_agree_with_isinstance() -> None:
    """h2f tests a node's type with ``type(node) is cst.Name`` (or ``in concrete_types(...)``) where it is asked of
    every node: that is ``isinstance`` only while libcst's concrete node classes have no subclasses."""
    kinds = traversal.NODE_TYPES
    for kind in kinds:
        if not inspect.isabstract(kind) and getattr(cst, kind.__name__, None) is kind:
            assert not kind.__subclasses__(), kind
    for base in (cst.BaseExpression, cst.BaseStatement, cst.BaseSmallStatement, cst.BaseCompoundStatement, cst.Name):
        expected = {kind for kind in kinds if issubclass(kind, base) and not inspect.isabstract(kind)}
        assert traversal.concrete_types(base) == expected


@pytest.mark.parametrize("path", FIXTURES[:6], ids=_sample_id)
def test_a_rebuilt_node_is_what_with_changes_gives(path: Path) -> None:
    """The transform's rebuild of a node whose children changed gives the node ``with_changes`` gives: same type,
    same fields (the very same values), validated the same way."""
    for node in walk(cst.parse_module(path.read_text())):
        fields = [field.name for field in dataclasses.fields(node)]  # type: ignore[arg-type]
        changes = {fields[0]: getattr(node, fields[0])}
        for rebuilt, expected in ((traversal._rebuilt(node, {}), node), (traversal._rebuilt(node, changes), node)):
            assert type(rebuilt) is type(expected) and rebuilt is not node
            assert all(getattr(rebuilt, name) is getattr(expected, name) for name in fields)
    name = cst.Name("x")
    invalid = {"lpar": [cst.LeftParen()]}  # no closing parenthesis
    with pytest.raises(cst.CSTValidationError) as theirs:
        name.with_changes(**invalid)
    with pytest.raises(cst.CSTValidationError) as ours:
        traversal._rebuilt(name, invalid)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(cst.CSTValidationError) as ours:
        traversal.changed(name, **invalid)
    assert str(ours.value) == str(theirs.value)
    assert traversal.changed(name, value="y").deep_equals(name.with_changes(value="y"))
    with pytest.raises(TypeError, match="Name has no field valu"):
        traversal.changed(name, valu="y")
