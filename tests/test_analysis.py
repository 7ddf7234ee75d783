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
    return definitions[0] if len(definitions) == 1 and type(definitions[0]) is cst.FunctionDef else None


def test_function_named_of_a_name_no_def_has_is_none(analyses: list[FileAnalysis]) -> None:
    """function_named answers a name no ``def`` of the file has without resolving it: resolving it finds no def."""
    for analysis in analyses:
        for node in analysis.nodes_of(cst.Name):
            assert analysis.function_named(node) is _function_named_by_scope(analysis, node), node.value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kind", [cst.ClassDef, cst.ImportFrom, (cst.FunctionDef, cst.Lambda), cst.BaseCompoundStatement, cst.BaseExpression]
)
def test_enclosing_is_the_nearest_ancestor_isinstance_admits(analyses: list[FileAnalysis], kind: type) -> None:
    """enclosing tests types by table (ABCMeta's isinstance is slow): it finds the ancestor isinstance finds."""
    for analysis in analyses:
        for node in analysis.nodes:
            expected = next((ancestor for ancestor in analysis.ancestors(node) if isinstance(ancestor, kind)), None)
            assert analysis.enclosing(node, kind) is expected
