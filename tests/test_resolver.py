"""The name resolver (h2f/resolver.py): Python's scoping rules, and the same answers as libcst's providers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import haiku
import libcst as cst
import pytest
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from h2f.resolver import Resolver, Scope, iter_scopes, resolve
from h2f.traversal import walk

FIXTURES = sorted((Path(__file__).resolve().parent.parent / "fixtures").glob("*/*/before.py"))
#: dm-haiku's own sources (not its tests): real code with every import style, class-level aliases, ``del``.
HAIKU_SOURCES = sorted(path for path in Path(haiku.__file__).parent.rglob("*.py") if not path.name.endswith("_test.py"))


def _expression(resolver: Resolver, code: str, module: cst.Module, occurrence: int = 0) -> cst.CSTNode:
    """The ``occurrence``-th Name/Attribute of the module whose source text is ``code``."""
    found = [
        node
        for node in resolver.nodes
        if isinstance(node, (cst.Name, cst.Attribute)) and module.code_for_node(node) == code
    ]
    return found[occurrence]


def _qualified(source: str, code: str, occurrence: int = 0) -> set[str]:
    module = cst.parse_module(textwrap.dedent(source))
    resolver = resolve(module)
    return set(resolver.qualified_names(_expression(resolver, code, module, occurrence)))


@pytest.mark.parametrize(
    ("source", "code", "occurrence", "expected"),
    [
        pytest.param("import haiku as hk\nhk.nets.MLP\n", "hk.nets.MLP", 0, {"haiku.nets.MLP"}, id="alias"),
        pytest.param("from haiku import Linear as L\nL(3)\n", "L", 1, {"haiku.Linear"}, id="from-import-as"),
        pytest.param("from haiku import nets\nnets.MLP\n", "nets.MLP", 0, {"haiku.nets.MLP"}, id="from-import-module"),
        pytest.param(
            "import haiku.experimental\nhaiku.experimental.layer_stack\n",
            "haiku.experimental.layer_stack",
            0,
            {"haiku.experimental.layer_stack"},
            id="dotted-import",
        ),
        pytest.param(
            "import haiku as hk\ndef f():\n    hk = make()\n    return hk.Linear\n",
            "hk.Linear",
            0,
            {"f.<locals>.hk.Linear"},
            id="shadowed-in-function",
        ),
        pytest.param(
            "import haiku as hk\ndef f():\n    hk = make()\nhk.Linear\n",
            "hk.Linear",
            0,
            {"haiku.Linear"},
            id="function-local-invisible-outside",
        ),
        pytest.param(
            "import haiku as hk\nclass C:\n    hk = 1\n    def m(self):\n        return hk.Linear\n",
            "hk.Linear",
            0,
            {"haiku.Linear"},
            id="class-body-invisible-from-method",
        ),
        pytest.param(
            "import haiku as hk\nclass C:\n    hk = 1\n    x = hk.Linear\n",
            "hk.Linear",
            0,
            {"C.hk.Linear"},
            id="class-body-visible-in-class",
        ),
        pytest.param(
            "import haiku as hk\nclass C:\n    hk = 1\n    xs = [hk.Linear for _ in range(2)]\n",
            "hk.Linear",
            0,
            {"haiku.Linear"},
            id="class-body-invisible-from-comprehension",
        ),
        pytest.param(
            "import haiku as hk\ndef f():\n    global hk\n    hk = 2\nhk.Linear\n",
            "hk.Linear",
            0,
            {"haiku.Linear", "hk.Linear"},
            id="global-binds-at-module-level",
        ),
        pytest.param(
            "import haiku as hk\ndef f():\n    hk = 1\n    def g():\n        nonlocal hk\n        hk = 2\n    return hk.Linear\n",
            "hk.Linear",
            0,
            {"f.<locals>.hk.Linear"},
            id="nonlocal",
        ),
        pytest.param("from haiku import *\nLinear(3)\n", "Linear", 0, set(), id="star-import-unknown"),
        pytest.param("import haiku as hk\nx = hk.Linear\ndel hk\n", "hk.Linear", 0, {"haiku.Linear"}, id="del"),
        pytest.param(
            "import haiku as hk\n[hk.Linear for hk in range(2)]\n",
            "hk.Linear",
            0,
            {"<comprehension>.hk.Linear"},
            id="comprehension-target",
        ),
        pytest.param(
            "import haiku as hk\n[0 for hk in hk.nets]\n", "hk.nets", 0, {"haiku.nets"}, id="first-iterable-outside"
        ),
        pytest.param(
            "import haiku as hk\ndef f(hk):\n    return hk.Linear\n",
            "hk.Linear",
            0,
            {"f.<locals>.hk.Linear"},
            id="parameter",
        ),
        pytest.param(
            "import haiku as hk\ndef f(x=hk.Linear):\n    pass\n",
            "hk.Linear",
            0,
            {"haiku.Linear"},
            id="default-outside",
        ),
        pytest.param(
            "import haiku as hk\nf = lambda hk: hk.Linear\n", "hk.Linear", 0, {"<locals>.hk.Linear"}, id="lambda"
        ),
        pytest.param(
            "import haiku as hk\nwith open('f') as hk:\n    hk.Linear\n",
            "hk.Linear",
            0,
            {"haiku.Linear", "hk.Linear"},
            id="with-as",
        ),
        pytest.param(
            "import haiku as hk\ndef f():\n    for hk in []:\n        hk.Linear\n",
            "hk.Linear",
            0,
            {"f.<locals>.hk.Linear"},
            id="for-target",
        ),
        pytest.param(
            "import haiku as hk\ndef f():\n    try:\n        pass\n    except E as hk:\n        hk.Linear\n",
            "hk.Linear",
            0,
            {"f.<locals>.hk.Linear"},
            id="except-as",
        ),
        pytest.param(
            "def f():\n    import haiku as hk\n    return hk.Linear\nhk.Linear\n",
            "hk.Linear",
            0,
            {"haiku.Linear"},
            id="import-in-function",
        ),
        pytest.param(
            "def f():\n    import haiku as hk\n    return hk.Linear\nhk.Linear\n",
            "hk.Linear",
            1,
            set(),
            id="import-in-function-outside",
        ),
        pytest.param("import haiku as hk\nhk.Linear\n", "Linear", 0, set(), id="attribute-name-has-none"),
        pytest.param("import haiku as hk\nf(hk=1)\n", "hk", 1, set(), id="keyword-has-none"),
        pytest.param("print\n", "print", 0, {"builtins.print"}, id="builtin"),
    ],
)
def test_qualified_names(source: str, code: str, occurrence: int, expected: set[str]) -> None:
    assert _qualified(source, code, occurrence) == expected


def test_walrus_in_comprehension_binds_in_the_function() -> None:
    module = cst.parse_module("def f():\n    [(y := x) for x in range(2)]\n    return y\n")
    resolver = resolve(module)
    use = [node for node in resolver.nodes if isinstance(node, cst.Name) and node.value == "y"][-1]
    scope = resolver.scopes[use]
    (assignment,) = scope["y"]
    assert assignment.scope is scope and isinstance(resolver.parents[assignment.node], cst.NamedExpr)
    assert [access.node for access in assignment.references] == [use]


def test_assignments_and_references() -> None:
    module = cst.parse_module("x = 1\ndef f(a):\n    b = a + x\n    return x\n")
    resolver = resolve(module)
    function = module.body[1]
    module_scope = resolver.scopes[module]
    function_scope = resolver.scopes[function.body.body[0]]
    assert function_scope.parent is module_scope and resolver.scopes[function] is module_scope
    assert {assignment.name for assignment in function_scope.assignments} == {"a", "b"}
    (x,) = module_scope["x"]
    assert x.node is module.body[0].body[0].targets[0].target
    assert len(x.references) == 2 and all(access.scope is function_scope for access in x.references)
    assert "x" in function_scope and "b" not in module_scope and "len" in module_scope
    assert {access.node.value for access in function_scope.accesses} == {"a", "x"}


def _libcst_names(module: cst.Module) -> tuple[dict[int, set[str]], dict[int, cst.CSTNode]]:
    wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
    metadata = wrapper.resolve_many([QualifiedNameProvider, ScopeProvider, ParentNodeProvider])
    names = {}
    for node, value in metadata[QualifiedNameProvider].items():
        value = value() if callable(value) else value
        names[id(node)] = {qualified.name for qualified in value}
    parents = {id(node): parent for node, parent in metadata[ParentNodeProvider].items()}
    return names, parents


@pytest.mark.parametrize("path", FIXTURES + HAIKU_SOURCES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_same_names_and_parents_as_libcst(path: Path) -> None:
    """Every Name/Attribute/Call gets libcst's qualified names, every node libcst's parent."""
    module = cst.parse_module(path.read_text())
    resolver = resolve(module)
    names, parents = _libcst_names(module)
    for node in resolver.nodes:
        if isinstance(node, (cst.Name, cst.Attribute, cst.Call)):
            assert set(resolver.qualified_names(node)) == names.get(id(node), set()), module.code_for_node(node)
        assert resolver.parents.get(node) is parents.get(id(node))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.parent.name)
def test_walk_records_the_nodes_traversal_walks_in_its_order(path: Path) -> None:
    """``nodes`` is :func:`h2f.traversal.walk` of the module, and each node's span is its own walk."""
    module = cst.parse_module(path.read_text())
    resolver = resolve(module)
    assert resolver.nodes == walk(module)
    for node in resolver.nodes:
        start, end = resolver.span(node)
        assert resolver.nodes[start:end] == walk(node)


def _references(resolver: Resolver) -> list[list[int]]:
    """Every binding's references (the ids of their nodes, in order), scope by scope, name by name."""
    return [
        [id(access.node) for access in assignment.references]
        for scope in reversed(list(iter_scopes(resolver)))
        for found in reversed(list(scope._assignments.values()))
        for assignment in found
    ]


@pytest.mark.parametrize("path", FIXTURES + HAIKU_SOURCES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_reads_resolved_on_demand_as_all_at_once(path: Path) -> None:
    """Resolving the reads of a name when first asked (any name first, in any order) gives the bindings, their
    references, the qualified names and the unbound reads that :meth:`Resolver.finish` gives resolving them all."""
    module = cst.parse_module(path.read_text())
    eager = resolve(module)
    by_names, by_references = Resolver(), Resolver()
    by_names.walk(module)
    by_references.walk(module)
    references = _references(eager)
    assert _references(by_references) == references
    for index in reversed(range(len(eager.nodes))):
        node = eager.nodes[index]
        if isinstance(node, (cst.Name, cst.Attribute, cst.Call)):
            for query in ("unbound", "qualified_names")[:: 1 if index % 2 else -1]:  # either may come first
                assert getattr(by_names, query)(node) == getattr(eager, query)(node)
    assert _references(by_names) == references
    for lazy in (by_names, by_references):
        assert [_accesses(scope) for scope in iter_scopes(lazy)] == [_accesses(scope) for scope in iter_scopes(eager)]


def _accesses(scope: Scope) -> dict[int, list[int]]:
    """The reads made in ``scope`` (ids of their nodes) → the bindings each may read (ids of those)."""
    return {id(access.node): [id(assignment.node) for assignment in access.referents] for access in scope.accesses}
