"""``hk.max_pool`` / ``hk.avg_pool`` (and the ``hk.MaxPool`` / ``hk.AvgPool`` modules) → ``nn.max_pool`` /
``nn.avg_pool``.

Haiku's windows and strides span every axis of the input (an integer means "this size on every axis but
the batch and channel axes"); Flax's span only the axes between batch and features. A full-rank tuple
``(1, 3, 3, 1)`` becomes ``(3, 3)``; an integer ``3`` becomes ``(3,) * (x.ndim - 2)``, which is what Haiku
computes for any input rank. Haiku's SAME average pooling divides by the number of valid entries, so it
becomes ``count_include_pad=False``. Other channel axes, and windows h2f cannot read, are left in place.
"""

from __future__ import annotations

import libcst as cst

from h2f.rule import Rule
from h2f.syntax import bind_arguments, call, code_of, expr, keyword, positional

_FUNCTIONS = {"haiku.max_pool": "max_pool", "haiku.avg_pool": "avg_pool"}
_MODULES = {"haiku.MaxPool": "max_pool", "haiku.AvgPool": "avg_pool"}
_PARAMS = ("window_shape", "strides", "padding", "channel_axis")


class Pooling(Rule):
    """Translate Haiku pooling to ``nn.max_pool``/``nn.avg_pool`` with windows over the spatial axes only."""

    code = "H2F021"
    haiku_apis = (*_FUNCTIONS, *_MODULES)
    order = 20

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        name = self.ctx.haiku_name(original_node.func)
        if name in _FUNCTIONS:
            if not updated_node.args or updated_node.args[0].keyword is not None:
                return self._keep(original_node, f"{name} without its input as first argument")
            settings = updated_node.with_changes(args=updated_node.args[1:])
            return self._pool(original_node, _FUNCTIONS[name], updated_node.args[0].value, settings)
        if isinstance(original_node.func, cst.Call):
            module = self.ctx.haiku_name(original_node.func.func)
            if module in _MODULES and len(updated_node.args) == 1 and updated_node.args[0].keyword is None:
                return self._pool(original_node, _MODULES[module], updated_node.args[0].value, updated_node.func)  # type: ignore[arg-type]
        return None

    def _pool(self, original: cst.Call, function: str, inputs: cst.BaseExpression, settings: cst.Call) -> cst.BaseExpression | None:
        bound = bind_arguments(settings, (*_PARAMS, "name"))
        if bound is None or not {"window_shape", "strides", "padding"} <= bound.keys():
            return self._keep(original, "pooling call h2f cannot read")
        if "channel_axis" in bound and code_of(bound["channel_axis"].value) != "-1":
            return self._keep(original, "pooling over another channel axis than the last")
        window = self._spatial(bound["window_shape"].value, inputs)
        strides = self._spatial(bound["strides"].value, inputs)
        if window is None or strides is None:
            return self._keep(original, "pooling window or strides h2f cannot map onto the spatial axes")
        padding = bound["padding"].value
        args = [positional(inputs), positional(window), keyword("strides", strides), keyword("padding", padding)]
        if function == "avg_pool" and code_of(padding).strip("'\"") != "VALID":
            args.append(keyword("count_include_pad", expr("False")))  # Haiku divides by the valid entries only
        return call(self.ctx.linen(function), args)

    def _spatial(self, size: cst.BaseExpression, inputs: cst.BaseExpression) -> cst.BaseExpression | None:
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

    def _keep(self, original: cst.Call, reason: str) -> None:
        self.ctx.keep(original, self.code, f"{reason}; left in place")
        return None
