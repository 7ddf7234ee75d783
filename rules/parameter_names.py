"""Report code that selects parameters by the names Haiku gives them, which Flax spells differently.

The usual weight-decay mask, ``tree_map_with_path(lambda path, _: path[-1].key not in ("b", "offset"), params)``,
runs unchanged on Flax's parameters and selects nothing it should: Flax calls a bias ``bias`` and a kernel
``kernel``. Likewise a sub-network frozen by its module's name (``str(path[0].key).startswith("encoder")``): Linen
names an unnamed ``Encoder()`` ``Encoder_0``. A walk of ``params.items()`` (what ``init`` returned) reads Haiku's
``{module: {name: value}}`` layout too. h2f cannot know which names the code means, so it leaves them as written
and says so (``H2F040``, as for ``params["linear"]["w"]``).
"""

from __future__ import annotations

import functools

import libcst as cst
from h2f.rules.transform import left_in_place, tree_of

from h2f.analysis import literal_items
from h2f.names import HAIKU_PARAMETER_NAMES, haiku_module_name
from h2f.rule import Rule
from h2f.syntax import code_of
from h2f.traversal import walk


class ParameterNames(Rule):
    """Report tests of a tree path's key against Haiku's parameter or default module names (``path[-1].key ==
    "b"``, ``str(path[0].key).startswith("encoder")``) and walks of the parameters' dict (``params.items()``)."""

    code = "H2F040"
    haiku_apis = ()
    targets = frozenset({"linen", "nnx"})
    order = 90

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> None:
        for node in self.ctx.analysis.nodes_of(cst.Comparison, cst.Call, cst.For, cst.CompFor):
            if type(node) in (cst.For, cst.CompFor):
                self._check_walk(node, node.iter)  # ``for module in params:``
            elif type(node) is cst.Comparison:
                operands = [node.left, *(target.comparator for target in node.comparisons)]
                if any(_reads_path_key(operand) for operand in operands):
                    self._report(node, operands)
            else:
                self._check_call(node)  # type: ignore[arg-type]
        return None

    def _check_call(self, node: cst.Call) -> None:
        """``params.items()`` over what ``init`` returned; ``str(path[0].key).startswith("encoder")``."""
        func = node.func
        if type(func) is cst.Name and func.value in _KEY_READERS and node.args and not node.args[0].star:
            self._check_walk(node, node.args[0].value)  # ``sorted(params)``
        if type(func) is not cst.Attribute:
            return
        if func.attr.value in _WALKS:
            self._check_walk(node, func.value)
        elif func.attr.value in ("startswith", "endswith") and _reads_path_key(func.value):
            self._report(node, [arg.value for arg in node.args])

    def _check_walk(self, node: cst.CSTNode, walked: cst.BaseExpression) -> None:
        """Report ``node`` when what it walks, ``walked``, is what ``init`` returned (or apply's new state)."""
        tree = tree_of(self.ctx.analysis, walked)
        if tree is not None and not left_in_place(self.ctx.analysis, tree):
            shown = f"for ... in {code_of(walked)}" if isinstance(node, (cst.For, cst.CompFor)) else code_of(node)
            self.ctx.report(
                node,
                self.code,
                f"{shown} walks the parameters or state as Haiku lays them out, "
                "{module: {name: value}}; Flax nests them by submodule and names them differently: rewrite it by "
                "hand (jax.tree_util works on both), left as written",
            )

    def _report(self, node: cst.CSTNode, operands: list[cst.BaseExpression]) -> None:
        origins = [origin for operand in operands for origin in self.ctx.analysis.value_origins(operand)]
        named = sorted({name for origin in origins for name in _strings_in(origin) if name in self._haiku_names})
        if not named:
            return
        flax = ", ".join(
            f"{name!r} → {HAIKU_PARAMETER_NAMES[name]!r}" if name in HAIKU_PARAMETER_NAMES else repr(name)
            for name in named
        )
        self.ctx.report(
            node,
            self.code,
            f"tests a parameter path against Haiku's names ({flax}); Flax names parameters and unnamed modules "
            "differently (kernel/bias, Encoder_0): check what it selects, left as written",
        )

    @functools.cached_property
    def _haiku_names(self) -> set[str]:
        """Haiku's parameter names Flax spells differently, and on Linen the names Haiku gives this file's unnamed
        modules (a name the code states, ``name="encoder"``, Linen keeps)."""
        analysis = self.ctx.analysis
        classes = [call.func for call in analysis.nodes_of(cst.Call) if analysis.constructs_module(call)]  # type: ignore[attr-defined]
        defaults = {
            haiku_module_name(name.rpartition(".")[2])
            for func in classes
            for name in [analysis.haiku_name(func) or (func.value if isinstance(func, cst.Name) else "")]
            if name
        }
        stated = {
            arg.value.evaluated_value
            for call in analysis.nodes_of(cst.Call)
            for arg in call.args  # type: ignore[attr-defined]
            if arg.keyword is not None and arg.keyword.value == "name" and isinstance(arg.value, cst.SimpleString)
        }
        if self.ctx.eager_nnx:
            return set(HAIKU_PARAMETER_NAMES)  # NNX attributes keep the names Haiku gives modules
        return set(HAIKU_PARAMETER_NAMES) | (defaults - stated)


#: Methods that walk a dict's keys or values.
_WALKS = frozenset({"items", "keys", "values"})
#: Builtins that read a dict's keys (its module names, for Haiku's parameters).
_KEY_READERS = frozenset({"sorted", "list", "set", "tuple", "enumerate"})


def _reads_path_key(node: cst.BaseExpression) -> bool:
    """Whether ``node`` reads ``<path entry>.key``, the key of a ``jax.tree_util`` path entry (``path[-1].key``)."""
    return any(isinstance(child, cst.Attribute) and child.attr.value == "key" for child in walk(node))


def _strings_in(node: cst.BaseExpression) -> list[str]:
    """The strings a string literal, or a literal tuple/list/set of them, holds."""
    items = literal_items(node) if not isinstance(node, cst.Dict) else None
    return [item.evaluated_value for item in items or [node] if isinstance(item, cst.SimpleString)]  # type: ignore[misc]
