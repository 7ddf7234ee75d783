"""Shortcuts of the file analysis (h2f/analysis.py) give the answers of the resolution they skip."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from h2f.analysis import FileAnalysis

FIXTURES = sorted((Path(__file__).resolve().parent.parent / "fixtures").glob("*/*/before.py"))
#: Names bound after they are read, aliases of aliases, nested and shadowing defs, a def named like an attribute.
TRICKY = textwrap.dedent(
    """
    import haiku as hk
    import jax

    A = B
    B = hk.Linear
    C = B
    nets = hk.nets

    def helper(x):
        def inner(y):
            return y
        return inner(x) + nets.MLP([2])(x)

    def forward(x):
        helper = jax.nn.relu
        return helper(C(3)(x)).inner

    model = hk.transform(forward)
    """
)


def _analyses() -> list[FileAnalysis]:
    sources = [path.read_text() for path in FIXTURES] + [TRICKY]
    return [
        FileAnalysis.build(cst.MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)) for source in sources
    ]


@pytest.fixture(scope="module")
def analyses() -> list[FileAnalysis]:
    return _analyses()


def test_haiku_name_of_a_name_no_haiku_import_binds_is_none(analyses: list[FileAnalysis]) -> None:
    """haiku_name answers a Name outside ``haiku_aliases`` without resolving it: resolving it finds no Haiku."""
    for analysis in analyses:
        for node in analysis.nodes_of(cst.Name):
            assert analysis.haiku_name(node) == analysis._haiku_name(node), node.value  # type: ignore[attr-defined]


def _function_named_by_scope(analysis: FileAnalysis, name: cst.Name) -> cst.FunctionDef | None:
    """function_named without its look-up of the file's def names."""
    scope = analysis.scopes.get(name)
    if scope is None:
        return analysis.functions.get(name.value)
    definitions = [getattr(assignment, "node", None) for assignment in scope[name.value]]
    if len(definitions) == 1 and type(definitions[0]) is cst.FunctionDef:
        return definitions[0]
    reached = analysis.binding_read(name)
    return reached if type(reached) is cst.FunctionDef else None


def test_function_named_of_a_name_no_def_has_is_none(analyses: list[FileAnalysis]) -> None:
    """function_named answers a name no ``def`` of the file has without resolving it: resolving it finds no def."""
    for analysis in analyses:
        for node in analysis.nodes_of(cst.Name):
            assert analysis.function_named(node) is _function_named_by_scope(analysis, node), node.value  # type: ignore[arg-type]


#: A name bound more than once: which binding each read reads, where the order of the statements tells.
REBOUND = textwrap.dedent(
    """
    def forward(x):
        return x

    first = forward(1)
    forward = wrap(forward)
    later = forward(2)
    deferred = lambda: forward(3)

    def make():
        def step(x):
            return x
        early = lambda: step(0)
        step = wrap(step)
        return step(1)

    def agent(network):
        network = wrap(network)
        return network

    if flag:
        branch = 1
    else:
        branch = 2
    either = branch
    for item in items:
        looped = 1
        seen = looped
        looped = 2
    """
)


def test_the_binding_a_read_reads_follows_the_order_of_the_statements() -> None:
    """binding_read: the last binding before the read's statement in straight-line code (the read in ``forward =
    wrap(forward)`` is the def's, a parameter's before any statement); a function made after every binding reads the
    last; a function made before one, bindings in branches, and a block run in a loop are not told."""
    analysis = FileAnalysis.build(cst.MetadataWrapper(cst.parse_module(REBOUND), unsafe_skip_copy=True))

    def first_line(node: cst.CSTNode) -> str:
        statement = analysis._statement_of(node)[0]  # type: ignore[attr-defined]
        return analysis.module.code_for_node(statement).strip().splitlines()[0]

    def reads(name: str, line: str) -> list[str | None]:
        """What each read of ``name`` in the statement starting with ``line`` reads: its binding's first line."""
        found = []
        for node in analysis.nodes_of(cst.Name):
            parent = analysis.parents.get(node)
            binds = isinstance(parent, cst.AssignTarget) or isinstance(parent, cst.FunctionDef) and parent.name is node
            if node.value == name and not binds and first_line(node).startswith(line):
                reached = analysis.binding_read(node)  # type: ignore[arg-type]
                found.append(None if reached is None else first_line(reached))
        return found

    assert reads("forward", "first =") == ["def forward(x):"]
    assert reads("forward", "forward = wrap") == ["def forward(x):"]
    assert reads("forward", "later =") == ["forward = wrap(forward)"]
    assert reads("forward", "deferred =") == ["forward = wrap(forward)"]
    assert reads("step", "early =") == [None]
    assert reads("step", "return step(1)") == ["step = wrap(step)"]
    assert reads("network", "network = wrap") == ["def agent(network):"]  # (a parameter: bound before the body)
    assert reads("network", "return network") == ["network = wrap(network)"]
    assert reads("branch", "either =") == [None]
    assert reads("looped", "seen =") == [None]


@pytest.mark.parametrize(
    "kind", [cst.ClassDef, cst.ImportFrom, (cst.FunctionDef, cst.Lambda), cst.BaseCompoundStatement, cst.BaseExpression]
)
def test_enclosing_is_the_nearest_ancestor_isinstance_admits(analyses: list[FileAnalysis], kind: type) -> None:
    """enclosing tests types by table (ABCMeta's isinstance is slow): it finds the ancestor isinstance finds."""
    for analysis in analyses:
        for node in analysis.nodes:
            expected = next((ancestor for ancestor in analysis.ancestors(node) if isinstance(ancestor, kind)), None)
            assert analysis.enclosing(node, kind) is expected
