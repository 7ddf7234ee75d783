"""``hk.max_pool`` / ``hk.avg_pool`` (and the ``hk.MaxPool`` / ``hk.AvgPool`` modules) → ``nn.max_pool`` /
``nn.avg_pool``.

Haiku's windows and strides span every axis of the input (an integer means "this size on every axis but
the batch and channel axes"); Flax's span only the axes between batch and features. A full-rank tuple
``(1, 3, 3, 1)`` becomes ``(3, 3)``; an integer ``3`` becomes ``(3,) * (x.ndim - 2)``, which is what Haiku
computes for any input rank. Haiku's SAME average pooling divides by the number of valid entries, so it
becomes ``count_include_pad=False``. A pooling module not called where it is built (an item of ``hk.Sequential``,
``self.pool = hk.MaxPool(...)``) becomes ``lambda x: nn.max_pool(x, ...)``. Other channel axes, and windows h2f
cannot read, are left in place.
The NNX target writes the same functions from ``flax.nnx`` (``nnx.max_pool`` is ``nn.max_pool``).
"""

from __future__ import annotations

import libcst as cst

from h2f.analysis import FileAnalysis
from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, call, code_of, expr, keyword, positional

_FUNCTIONS = {"haiku.max_pool": "max_pool", "haiku.avg_pool": "avg_pool"}
_MODULES = {"haiku.MaxPool": "max_pool", "haiku.AvgPool": "avg_pool"}
_PARAMS = ("window_shape", "strides", "padding", "channel_axis")
#: The parameter of a ``lambda`` standing for a pooling module that is not called at once: the first of these its
#: settings do not read.
_LAMBDA_INPUTS = ("x", "inputs", "pooled_input")


class Pooling(Rule):
    """Translate Haiku pooling to ``nn.max_pool``/``nn.avg_pool`` with windows over the spatial axes only."""

    code = "H2F021"
    haiku_apis = (*_FUNCTIONS, *_MODULES)
    targets = frozenset({"linen", "nnx"})
    order = 20
    triggers = {"leave_Call": Trigger.HAIKU | Trigger.MADE}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        if _built_alone(self.ctx.analysis, original_node):
            return self._function_of(original_node, updated_node)
        read = _read(self.ctx.analysis, original_node)
        if read is None:
            return None
        if isinstance(read, str):
            return self._keep(original_node, read)
        function = read[0]
        _, inputs, bound = _read(self.ctx.analysis, updated_node, function)  # type: ignore[misc]
        return self._pooling(function, inputs, bound)

    def _function_of(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression | None:
        """``hk.MaxPool(...)`` not called at once (an item of ``hk.Sequential``): a ``lambda`` that pools."""
        name = self.ctx.haiku_name(original.func)
        used = {node.value for node in self.ctx.analysis.subtree(original) if type(node) is cst.Name}
        parameter = next(candidate for candidate in _LAMBDA_INPUTS if candidate not in used)  # no capture
        read = _read_settings(name, _MODULES[name], expr(parameter), original)  # type: ignore[index,arg-type]
        if isinstance(read, str):
            return self._keep(original, read)
        _, inputs, bound = _read_settings(name, read[0], expr(parameter), updated)  # type: ignore[arg-type,misc]
        return cst.Lambda(
            params=cst.Parameters([cst.Param(cst.Name(parameter))]), body=self._pooling(read[0], inputs, bound)
        )

    def _pooling(self, function: str, inputs: cst.BaseExpression, bound: dict[str, cst.Arg]) -> cst.Call:
        window = _spatial(bound["window_shape"].value, inputs)
        strides = _spatial(bound["strides"].value, inputs)
        padding = bound["padding"].value
        args = [positional(inputs), positional(window), keyword("strides", strides), keyword("padding", padding)]  # type: ignore[arg-type]
        if function == "avg_pool" and code_of(padding).strip("'\"") != "VALID":
            args.append(keyword("count_include_pad", expr("False")))  # Haiku divides by the valid entries only
        return call(self.ctx.modules_namespace(function), args)

    def _keep(self, original: cst.Call, reason: str) -> None:
        self.ctx.keep(original, self.code, f"{reason}; left in place")
        return None


def _built_alone(analysis: FileAnalysis, node: cst.Call) -> bool:
    """Whether ``node`` builds a Haiku pooling module that is not called at once."""
    if analysis.haiku_name(node.func) not in _MODULES:
        return False
    return analysis.immediate_call(node) is None


def untranslatable(analysis: FileAnalysis, node: cst.Call) -> str | None:
    """Why the pooling call ``node`` (``hk.max_pool(x, ...)`` or ``hk.AvgPool(...)(x)``) stays in place, if it does."""
    read = _read(analysis, node)
    return read if isinstance(read, str) else None


def _read(
    analysis: FileAnalysis, node: cst.Call, function: str | None = None
) -> tuple[str, cst.BaseExpression, dict[str, cst.Arg]] | str | None:
    """(Flax function, input, bound settings) of a pooling call, why it cannot be translated, or None when it is
    no pooling call. ``function`` is given for the rewritten call (its callee no longer names Haiku)."""
    module = type(node.func) is cst.Call
    if function is not None:
        name = function
    elif module and analysis.haiku_name(node.func.func) in _MODULES:  # type: ignore[attr-defined]
        name = analysis.haiku_name(node.func.func)  # type: ignore[attr-defined]
    elif not module and analysis.haiku_name(node.func) in _FUNCTIONS:
        name = analysis.haiku_name(node.func)
    else:
        return None
    if not module:
        if not node.args or node.args[0].keyword is not None:
            return f"{name} without its input as first argument"
        inputs, settings = node.args[0].value, node.with_changes(args=node.args[1:])
    else:
        if len(node.args) != 1 or node.args[0].keyword is not None:
            return f"{name} called other than on one input"
        inputs, settings = node.args[0].value, node.func  # type: ignore[assignment]
    return _read_settings(name, function or {**_FUNCTIONS, **_MODULES}[name], inputs, settings)  # type: ignore[arg-type]


def _read_settings(
    name: str, function: str, inputs: cst.BaseExpression, settings: cst.Call
) -> tuple[str, cst.BaseExpression, dict[str, cst.Arg]] | str:
    """(Flax function, input, bound settings) of the pooling ``name`` applied to ``inputs`` with the arguments of
    ``settings`` (the function call less its input, or the module's construction), or why h2f cannot translate it."""
    bound = bind_arguments(settings, (*_PARAMS, "name"))
    if bound is None or not {"window_shape", "strides", "padding"} <= bound.keys():
        return "pooling call h2f cannot read"
    if "channel_axis" in bound and code_of(bound["channel_axis"].value) != "-1":
        return "pooling over another channel axis than the last"
    sizes = [bound["window_shape"].value, bound["strides"].value]
    if any(_spatial(size, inputs) is None for size in sizes):
        if not isinstance(inputs, (cst.Name, cst.Attribute)) and all(_spatial(size, expr("x")) for size in sizes):
            return (
                "an integer pooling window or stride spans every spatial axis of the input, whose rank h2f reads "
                "from a name: bind the input to one first"
            )
        return "pooling window or strides h2f cannot map onto the spatial axes"
    return function, inputs, bound


def _spatial(size: cst.BaseExpression, inputs: cst.BaseExpression) -> cst.BaseExpression | None:
    """Haiku's full-rank window or stride as Flax's spatial-only one."""
    if isinstance(size, (cst.Tuple, cst.List)):
        values = [code_of(element.value) for element in size.elements]
        if len(values) >= 3 and values[0] == "1" and values[-1] == "1":
            inner = values[1:-1]
            return expr(f"({', '.join(inner)}{',' if len(inner) == 1 else ''})")
        return None
    if isinstance(size, (cst.Integer, cst.Name, cst.Attribute)) and isinstance(inputs, (cst.Name, cst.Attribute)):
        return expr(f"({code_of(size)},) * ({code_of(inputs)}.ndim - 2)")
    return None
