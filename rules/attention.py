"""``hk.MultiHeadAttention`` → ``nn.MultiHeadDotProductAttention``, with the sizes Haiku derives stated.

Haiku projects queries, keys and values with ``hk.Linear(num_heads * key_size)`` layers (``query``, ``key``,
``value``) and the heads' concatenation with a ``linear`` one (``model_size``, by default ``num_heads *
key_size``). Flax's module has ``query``/``key``/``value``/``out`` layers holding the same matrices split by head
(``[D, H*K]`` is ``[D, H, K]``, ``[H*K, D']`` is ``[H, K, D']``: the verifier's converter reshapes them), and
computes the same softmax of the scaled dot products. Flax takes both sizes from the query's width unless told,
so the translation states ``qkv_features`` and ``out_features``; the deprecated ``w_init_scale`` becomes the
``VarianceScaling(w_init_scale)`` it stood for. Calls keep ``query, key, value`` positional and pass ``mask`` by
keyword (Flax's is keyword-only). A ``value_size`` other than ``key_size`` (Flax uses one head size), a
construction Haiku itself rejects (no initializer, or two) and calls h2f cannot read leave the layer and all its
calls in place.
"""

from __future__ import annotations

import libcst as cst
from h2f.rules.initializers import adapt_initializer

from h2f.names import MULTI_HEAD_ATTENTION_ARGS
from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, call, code_of, expr, is_name_attribute, is_none, keyword, positional

API = "haiku.MultiHeadAttention"
#: ``hk.MultiHeadAttention.__init__``'s parameters in positional order.
HAIKU_PARAMS = ("num_heads", "key_size", "w_init_scale", "w_init", "with_bias", "b_init", "value_size", "model_size")
#: Its ``__call__``'s.
CALL_PARAMS = ("query", "key", "value", "mask")


class MultiHeadAttention(Rule):
    """Translate ``hk.MultiHeadAttention`` to ``nn.MultiHeadDotProductAttention`` and rewrite its calls."""

    code = "H2F021"
    haiku_apis = (API,)
    order = 20
    triggers = {"leave_Call": Trigger.HAIKU | Trigger.MADE}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        if self.ctx.haiku_name(original_node.func) == API:
            problem = self._untranslatable(original_node)
            if problem is not None:
                self.ctx.keep(original_node, self.code, f"{API} {problem}; left in place with its calls")
                return None
            return self._construction(original_node, updated_node)
        constructor = self.ctx.analysis.layer_of(original_node.func, API)
        if constructor is None or self._untranslatable(constructor):
            return None
        bound = bind_arguments(updated_node, CALL_PARAMS)
        assert bound is not None  # _untranslatable read every call
        args = [positional(bound[name].value) for name in ("query", "key", "value")]
        if "mask" in bound and not is_none(bound["mask"].value):
            args.append(keyword("mask", bound["mask"].value))
        return call(updated_node.func, args)

    def _untranslatable(self, construction: cst.Call) -> str | None:
        """Why the layer built by ``construction`` (an original node) stays Haiku, or None."""
        bound = bind_arguments(construction, (*HAIKU_PARAMS, "name"))
        if bound is None or any(arg.star for arg in construction.args):
            return "called with *args/**kwargs or more arguments than it takes"
        given = {name for name, arg in bound.items() if not is_none(arg.value)}
        if not {"num_heads", "key_size"} <= given:
            return "without num_heads and key_size"
        if len(given & {"w_init", "w_init_scale"}) != 1:
            return "needs exactly one of w_init and w_init_scale (Haiku raises otherwise)"
        if "value_size" in given and code_of(bound["value_size"].value) != code_of(bound["key_size"].value):
            return "with a value_size other than its key_size: Flax's attention uses one size per head"
        for site in self.ctx.analysis.calls_of(construction):
            called = bind_arguments(site, CALL_PARAMS)
            if called is None or any(arg.star for arg in site.args) or not {"query", "key", "value"} <= called.keys():
                return "called without query, key and value or with *args/**kwargs"
        return None

    def _construction(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        bound = bind_arguments(updated, (*HAIKU_PARAMS, "name"))
        original_bound = bind_arguments(original, (*HAIKU_PARAMS, "name"))
        assert bound is not None and original_bound is not None  # _untranslatable checked
        given = {name: arg.value for name, arg in bound.items() if not is_none(arg.value)}
        heads, size = given["num_heads"], given["key_size"]
        if isinstance(heads, cst.Integer) and isinstance(size, cst.Integer):
            features: cst.BaseExpression = cst.Integer(str(int(heads.value) * int(size.value)))
        else:
            features = expr(f"{_factor(heads)} * {_factor(size)}")
        translated: dict[str, cst.BaseExpression] = {"num_heads": heads, "qkv_features": features}
        model_size = given.get("model_size")
        if model_size is None or isinstance(model_size, cst.Integer) and model_size.value == "0":
            translated["out_features"] = features
        elif isinstance(model_size, cst.Integer) or is_name_attribute(_value_of_subscript(model_size), "shape"):
            translated["out_features"] = model_size  # a literal or a size (``x.shape[-1]``): never None
        else:  # Haiku's ``model_size or key_size * num_heads``
            translated["out_features"] = expr(f"{_factor(model_size)} or {code_of(features)}")
        if "w_init" in given:
            kernel_init = adapt_initializer(self.ctx, original_bound["w_init"].value, given["w_init"])
        else:
            kernel_init = call(
                self.ctx.linen("initializers.variance_scaling"),
                [
                    positional(given["w_init_scale"]),
                    positional(expr('"fan_in"')),
                    positional(expr('"truncated_normal"')),
                ],
            )
        if kernel_init is not None:
            translated["kernel_init"] = kernel_init
        if "b_init" in given:
            bias_init = adapt_initializer(self.ctx, original_bound["b_init"].value, given["b_init"])
            if bias_init is not None:
                translated["bias_init"] = bias_init
        for haiku, flax in MULTI_HEAD_ATTENTION_ARGS.items():
            if haiku in given and not (haiku == "with_bias" and code_of(given[haiku]) == "True"):
                translated[flax] = given[haiku]
        return call(
            self.ctx.linen("MultiHeadDotProductAttention"), [keyword(name, value) for name, value in translated.items()]
        )


def _value_of_subscript(node: cst.BaseExpression) -> cst.BaseExpression | None:
    return node.value if isinstance(node, cst.Subscript) else None


def _factor(node: cst.BaseExpression) -> str:
    """The source of ``node`` as an operand of ``*`` or ``or`` (parenthesized unless it is atomic)."""
    text = code_of(node)
    atomic = isinstance(node, (cst.Name, cst.Attribute, cst.Integer, cst.Call, cst.Subscript)) and not node.lpar
    return text if atomic else f"({text})"
