"""NNX target: functions that receive a transform as a parameter and call its ``init``/``apply`` (helpers).

``def predict(model: hk.Transformed, params, x): return model.apply(params, None, x)`` keeps its signature; the
transform it receives becomes what a factory returns on the NNX target, the model's constructor
(``model: type[MlpFn]``). ``model.init(key, x)`` builds the model and takes its variables
(``nnx.state(model(x.shape[-1], rngs=nnx.Rngs(key)), nnx.Param)``); ``model.apply(params, None, x)`` builds the
model's structure without computing anything (``nnx.eval_shape``) and merges the params into it, the NNX way of
restoring a checkpoint. A helper is only translated when every call in the file passes it the model of one
factory, and it does nothing else with the transform; otherwise the file is left in place (H2F100).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import libcst as cst
import libcst.matchers as m

from h2f.shapes import assigned_names, unique_name
from h2f.syntax import bind_arguments, code_of, is_none

if TYPE_CHECKING:
    from h2f.nnx_plan import NnxPlan, TransformPlan


@dataclasses.dataclass
class Helper:
    """A module-level function with a parameter typed ``hk.Transformed``/``hk.TransformedWithState`` that only calls
    the transform's ``init``/``apply``: it now receives the constructor of ``model``'s class."""

    function: cst.FunctionDef
    param: cst.Param
    model: TransformPlan  # the plan of the model every call passes: the transform's, or the one its factory returns
    uses: list[cst.Call] = dataclasses.field(default_factory=list)  # its ``init``/``apply`` calls

    @property
    def label(self) -> str:
        return f"{self.function.name.value}: {self.param.name.value}"


@dataclasses.dataclass
class HelperApply:
    """``model.apply(...)`` in a helper: the statement holding it first binds ``graphdef`` (the model's structure, or
    the abstract model itself for a model without state that draws random numbers) and, for a model with state or
    one that draws random numbers, ``module`` (the model with the params and state merged in, reseeded from ``rng``,
    Haiku's key, when it draws random numbers)."""

    helper: Helper
    call: cst.Call
    statement: cst.SimpleStatementLine
    graphdef: str
    module: str | None
    rng: cst.BaseExpression | None = None


def find_helpers(plan: NnxPlan, annotations: list[tuple[cst.CSTNode, str, cst.Param]]) -> None:
    """Plan the helpers whose parameters the ``hk.Transformed`` ``annotations`` type; block the others."""
    for node, name, param in annotations:
        helper = _helper(plan, name, param)
        if helper is not None:
            plan.factory_annotations[id(node)] = helper.model
            plan.helpers.append(helper)


def _helper(plan: NnxPlan, name: str, param: cst.Param) -> Helper | None:
    """The helper ``param`` (annotated ``name``) belongs to, or None (the reason is reported)."""
    analysis = plan.analysis
    function = analysis.enclosing(param, cst.FunctionDef)
    typed = analysis.transform_named(param.name)
    if (
        not isinstance(function, cst.FunctionDef)
        or analysis.parents.get(function) is not analysis.module
        or typed is None
        or typed.binding is not None
        or any(other.transform is typed for other in plan.transforms)  # not typed here: a transform passed in
        or all(p is not param for p in (*function.params.params, *function.params.kwonly_params))
    ):
        plan.block(
            param,
            f"{name} as the type of {param.name.value}: only hk.Transformed/hk.TransformedWithState parameters of module-level functions (which then receive the model's constructor) are supported by the nnx target yet",
        )
        return None
    where = f"{function.name.value}: {param.name.value}"
    if param.name.value in assigned_names(function.body):
        plan.block(param, f"{where} is reassigned in the function: not supported by the nnx target yet")
        return None
    uses = []
    for node in analysis.subtree(function.body):
        if (
            not isinstance(node, cst.Name)
            or node.value != param.name.value
            or analysis.transform_named(node) is not typed
        ):
            continue
        attribute = analysis.parents.get(node)
        called = analysis.parents.get(attribute)
        if not (
            m.matches(attribute, m.Attribute(attr=m.Name("init") | m.Name("apply")))
            and isinstance(called, cst.Call)
            and called.func is attribute
        ):
            plan.block(
                node,
                f"{where} ({name}) used other than by calling its init/apply (returned, stored or passed on): not supported by the nnx target yet",
            )
            return None
        uses.append(called)
    models = _models_passed(plan, function, param)
    if models is None:
        return None
    if len({id(model) for model in models}) != 1:
        labels = sorted({plan.bridge_model_name(model) for model in models})
        plan.block(
            function,
            f"{where} is given transforms of different models ({', '.join(labels)}); the nnx target types it as one model's constructor: not supported by the nnx target yet",
        )
        return None
    return Helper(function, param, models[0], uses)


def _models_passed(plan: NnxPlan, function: cst.FunctionDef, param: cst.Param) -> list[TransformPlan] | None:
    """The factories' plans of the transforms the file's calls of ``function`` pass for ``param``; None when a
    call passes anything else or the function is used other than called (the reason is reported)."""
    analysis = plan.analysis
    names = [p.name.value for p in function.params.params]
    found = []
    scope = analysis.scopes.get(function)
    assignments = scope[function.name.value] if scope is not None else ()
    references = [r.node for a in assignments if getattr(a, "node", None) is function for r in a.references]
    for node in references:
        called = analysis.parents.get(node)
        bound = bind_arguments(called, names) if isinstance(called, cst.Call) and called.func is node else None
        arg = bound.get(param.name.value) if bound is not None else None
        passed = plan.passed_plan(arg.value) if arg is not None else None
        if passed is None or not _names_a_constructor(plan, passed):
            what = (
                f"is called with {code_of(arg.value)} for its parameter {param.name.value}, not a transform bound to a name by `model = hk.transform(f)` or a factory's `model = make_model()`"
                if arg is not None
                else f"is used other than called with its parameter {param.name.value}, so h2f cannot tell which transform it receives"
            )
            plan.block(node, f"{function.name.value} {what}: not supported by the nnx target yet")
            return None
        plan.helper_arguments.add(id(arg.value))  # type: ignore[union-attr]
        passed.passed = True
        found.append(passed.factory or passed)
    if not found:
        plan.block(
            function,
            f"{function.name.value} is never called in this file, so h2f cannot tell which transform its parameter {param.name.value} receives: not supported by the nnx target yet",
        )
        return None
    return found


def _names_a_constructor(plan: NnxPlan, passed: TransformPlan) -> bool:
    """Whether the name of ``passed`` can hold its model's constructor: a factory's result, or a name bound once to
    ``hk.transform(f)`` (or ``transform_with_state``), which then binds the class ``f`` becomes."""
    binding = passed.transform.binding
    return passed.factory is not None or (
        passed.transform.kind == "transform" and isinstance(binding, cst.Assign) and id(binding) in plan.bindings
    )


def plan_helper_calls(plan: NnxPlan) -> None:
    """Check and note the ``init``/``apply`` calls of the helpers (once the models' needs are known)."""
    for helper in plan.helpers:
        model = helper.model
        for use in helper.uses:
            if use.args and any(arg.star for arg in use.args):
                plan.block(use, f"{helper.label}: init/apply call with *args or **kwargs h2f cannot read")
            elif use.func.attr.value == "init":  # type: ignore[attr-defined]
                _plan_init(plan, helper, use)
            else:
                _plan_apply(plan, helper, use)
        if model.unit is not None and model.unit.moved_params and helper.uses:
            plan.block(
                helper.function,
                f"{helper.label}: {plan.bridge_model_name(model)} takes a layer_stack count in its constructor: not supported in a function that receives the transform by the nnx target yet",
            )


def _plan_init(plan: NnxPlan, helper: Helper, init: cst.Call) -> None:
    from h2f.nnx_plan import init_arguments

    bound = init_arguments(init)
    if bound is None or "rng" not in bound or (helper.model.builder_params and len(init.args) < 2):
        plan.block(init, f"{helper.label}.init call h2f cannot read (an rng and a sample input are needed)")
        return
    plan.helper_inits[id(init)] = helper


def _plan_apply(plan: NnxPlan, helper: Helper, apply: cst.Call) -> None:
    model = helper.model
    leading = 1 + model.transform.with_state + model.transform.apply_rng
    positional = [arg for arg in apply.args if arg.keyword is None]
    if len(positional) < leading or apply.args[leading - 1].keyword is not None:
        plan.block(
            apply,
            f"{helper.label}.apply call whose params/state/rng are not its first positional arguments: not supported by the nnx target yet",
        )
        return
    if model.builder_params and len(positional) == leading:
        plan.block(apply, f"{helper.label}.apply: no positional input to take the model's input width from")
        return
    rng = apply.args[leading - 1].value if model.transform.apply_rng else None
    if model.uses_rng and (rng is None or is_none(rng)):
        plan.block(
            apply,
            f"{helper.label}.apply of {plan.bridge_model_name(model)}, which draws random numbers, without an rng key: not supported by the nnx target yet",
        )
        return
    merged = model.transform.with_state or model.uses_rng  # the model is merged before the statement
    if merged and not all(isinstance(arg.value, cst.Name) for arg in apply.args[:leading]):
        plan.block(
            apply,
            f"{helper.label}.apply whose params, state or rng are not names (the model is merged just before the statement): not supported by the nnx target yet",
        )
        return
    statement = _statement(plan, apply)
    if statement is None:
        plan.block(
            apply,
            f"{helper.label}.apply other than in a line of one statement that always runs it once (not in a lambda, comprehension, condition or compound statement's header): not supported by the nnx target yet",
        )
        return
    enclosing = plan.analysis.enclosing(apply, cst.FunctionDef)
    taken = plan.analysis.local_names(enclosing) | {  # type: ignore[arg-type]
        n.value for n in plan.analysis.subtree(enclosing) if isinstance(n, cst.Name)
    }
    taken |= {
        name
        for other in plan.helper_applies.values()
        if plan.analysis.enclosing(other.call, cst.FunctionDef) is enclosing
        for name in (other.graphdef, other.module)
        if name
    }
    abstract = model.uses_rng and not model.transform.with_state
    graphdef = unique_name("abstract" if abstract else "graphdef", taken)
    module = unique_name("module", taken | {graphdef}) if merged else None
    found = HelperApply(helper, apply, statement, graphdef, module, rng if model.uses_rng else None)
    plan.helper_applies[id(apply)] = found
    plan.helper_statements.setdefault(id(statement), []).append(found)


def _statement(plan: NnxPlan, node: cst.CSTNode) -> cst.SimpleStatementLine | None:
    """The line of one statement that runs ``node`` exactly once each time it runs (None when ``node`` is deferred,
    conditional, in a compound statement's header or on a line of several statements)."""
    current = plan.analysis.parents.get(node)
    while current is not None and not isinstance(current, cst.SimpleStatementLine):
        if isinstance(current, (cst.Lambda, cst.BaseComp, cst.BooleanOperation, cst.IfExp, cst.BaseCompoundStatement)):
            return None
        current = plan.analysis.parents.get(current)
    return current if current is not None and len(current.body) == 1 else None
