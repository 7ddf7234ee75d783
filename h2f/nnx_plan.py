"""What the NNX target will do with one file, decided before the traversal rewrites anything.

NNX modules are eager: every submodule is built in ``__init__`` with its input width and ``rngs``, and the
model is built where Haiku called ``init``. So the rules need to know, before they reach a class, which of
its calls become attributes (and under which Haiku name), how wide each layer's input is
(:mod:`h2f.shapes`), which classes take an ``in_features`` parameter, and how each transform's ``init`` and
``apply`` call sites become a construction and calls. :class:`NnxPlan` holds all of it.

A file the NNX target cannot migrate faithfully as a whole is left exactly as it is: the plan lists the
blockers (:attr:`NnxPlan.blockers`), each reported at its position, and the rules change nothing.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import libcst as cst
import libcst.matchers as m

from h2f.analysis import FileAnalysis, ModuleClass, Transform
from h2f.names import (
    INITIALIZERS,
    NNX_LAYERS,
    PAD_FUNCTIONS,
    STATE_ANNOTATIONS,
    TRANSFORM_ANNOTATIONS,
    TREE_SIZES,
    haiku_module_name,
)
from h2f.nnx_helpers import Helper, HelperApply, find_helpers, plan_helper_calls
from h2f.shapes import (
    ELEMENTWISE,
    FLAT,
    IN_DTYPE,
    INPUT,
    LAST_SIZE,
    NOT_A_METHOD,
    RESHAPE_PARAMS,
    SAME_DTYPE_LAYERS,
    Dtype,
    LoopWidths,
    ModuleUse,
    Reshaping,
    Width,
    WidthFlow,
    assigned_names,
    input_width_of,
    output_width,
    reshaping_of,
    substitute,
    trial,
    unique_name,
    width_reads,
    with_widths,
)
from h2f.syntax import annotated_field, bind_arguments, code_of, expr, replace_matching
from h2f.traversal import walk

if TYPE_CHECKING:
    from h2f.rules.nnx_layer_stack import StackSite
    from h2f.rules.nnx_scan import ScanSite

#: Haiku APIs the NNX target translates (anything else Haiku in a file blocks its NNX migration).
SUPPORTED = (
    frozenset(NNX_LAYERS)
    | frozenset(TREE_SIZES)
    | {
        "haiku.Module",
        "haiku.dropout",
        "haiku.next_rng_key",
        "haiku.transform",
        "haiku.transform_with_state",
        "haiku.multi_transform",
        "haiku.without_apply_rng",
        "haiku.get_parameter",
        "haiku.get_state",
        "haiku.set_state",
    }
)
#: Haiku pooling (the pooling rule translates it for both targets when it can read it).
POOLING = frozenset({"haiku.max_pool", "haiku.avg_pool", "haiku.MaxPool", "haiku.AvgPool"})
#: Haiku functions that create a variable where they run: they become attributes built in ``__init__``.
VARIABLES = {"haiku.get_parameter": "param", "haiku.get_state": "state"}


#: Why h2f knows nothing of a submodule's input when it saw no call of it.
_NOT_FOLLOWED = (
    "not called where h2f can follow its input (it is passed to a function, kept in a container, or called "
    "through another name)"
)

#: Haiku stacks of layers (they become one ``nnx.Sequential``).
STACKS = frozenset({"haiku.Sequential", "haiku.nets.MLP"})


@dataclasses.dataclass
class Submodule:
    """A submodule of an NNX module: built in ``__init__`` as ``self.<attribute>``."""

    call: cst.Call  # the original construction (``hk.Linear(...)``, ``Block(...)``) or ``hk.dropout(...)`` call
    attribute: str
    kind: str  # "layer", "local", "dropout", "param" (hk.get_parameter) or "state" (hk.get_state)
    api: str  # the Haiku API or the local class name
    hoisted: bool  # built inline in a method (moves to ``__init__``) rather than in ``__init__`` already
    given: list[Width] = dataclasses.field(default_factory=list)
    in_width: Width = None
    given_dtypes: list[Dtype] = dataclasses.field(default_factory=list)
    in_dtype: Dtype = None  # the dtype of its input, for a module class that needs it (``in_dtype``)
    loop: Loop | None = None  # built in a ``for`` loop of the method: an item of an ``nnx.List``
    stack: cst.BaseExpression | None = None  # built by an ``hk.layer_stack(stack)`` function: ``stack`` stacked copies


@dataclasses.dataclass
class Loop:
    """A ``for`` statement of a method that builds submodules: ``__init__`` repeats the loop, appending each
    submodule to an ``nnx.List`` attribute named as Haiku names the first of them (``linear`` holds
    ``linear``, ``linear_1``, …), and the method's loop iterates over those lists."""

    node: cst.For
    owner: str  # the unit whose method holds the loop
    targets: set[str]
    widths: LoopWidths
    submodules: list[Submodule] = dataclasses.field(default_factory=list)
    #: id of a submodule → the name of its item in the method's loop.
    items: dict[int, str] = dataclasses.field(default_factory=dict)
    #: Whether the method still reads the loop's own variables (other than to build the submodules).
    reads_targets: bool = True


@dataclasses.dataclass
class Unit:
    """A class the NNX migration produces: a Haiku module class, or a transformed function that is not one
    module call (it becomes a class whose ``__call__`` is the function body)."""

    name: str
    node: cst.ClassDef | cst.FunctionDef
    info: ModuleClass | None
    submodules: list[Submodule] = dataclasses.field(default_factory=list)
    needs_input: bool = False
    needs_size: bool = False  # takes ``in_size``, the flattened size of one example of its input
    needs_dtype: bool = False  # takes ``in_dtype``, the dtype of its input (variables Haiku creates with ``x.dtype``)
    stores_rngs: bool = False  # draws keys itself (hk.next_rng_key): keeps ``self.rngs``
    output: Width = None
    output_dtype: Dtype = None
    #: Methods other than ``__call__`` called from outside the class (``net.encode(x)``) → their output width
    #: given :data:`INPUT` (their first argument shares the width of the module's input).
    method_outputs: dict[str, Width] = dataclasses.field(default_factory=dict)
    external: set[str] = dataclasses.field(default_factory=set)
    #: ``self.<attribute>`` → the constructor parameter it stores unchanged.
    stored: dict[str, str] = dataclasses.field(default_factory=dict)
    #: A ``@dataclasses.dataclass`` module's fields (without ``name``): its constructor's parameters.
    fields: list[str] = dataclasses.field(default_factory=list)
    #: Statements of a method that compute what its submodules are built from (``c1, c2 = self._channels``):
    #: ``__init__`` runs them too, before building the submodules; the names they bind.
    lifted: list[cst.SimpleStatementLine] = dataclasses.field(default_factory=list)
    lifted_names: set[str] = dataclasses.field(default_factory=set)
    analysed: bool = False
    uses_rng: bool = False
    #: A subclass of another module class of the file: that class, and the submodules its ``__init__``
    #: (``super().__init__``) builds that this class uses (not those of the methods it overrides).
    base: Unit | None = None
    inherited: list[Submodule] = dataclasses.field(default_factory=list)
    #: Parameters of a transformed function that only count the layers of its layer stacks: the constructor
    #: takes them (NNX builds the layers in ``__init__``), ``__call__`` no longer does.
    moved_params: list[cst.Param] = dataclasses.field(default_factory=list)

    @property
    def methods(self) -> dict[str, cst.FunctionDef]:
        """The class's methods, inherited ones included."""
        own = dict(self.info.methods) if self.info is not None else {}
        return {**self.base.methods, **own} if self.base is not None else own

    @property
    def needs_rngs(self) -> bool:
        """Whether the constructor takes ``rngs`` (it builds submodules or draws keys)."""
        return bool(self.submodules) or self.stores_rngs or (self.base is not None and self.base.needs_rngs)

    @property
    def constructor_defaults(self) -> dict[str, cst.BaseExpression]:
        """The default values of the Haiku constructor's parameters that have one."""
        init = self.info.init if self.info is not None else None
        if init is None:
            return self.base.constructor_defaults if self.base is not None else {}
        params = [*init.params.params[1:], *init.params.kwonly_params]
        return {p.name.value: p.default for p in params if p.default is not None}

    @property
    def constructor_params(self) -> list[str]:
        """The Haiku constructor's parameters, without ``self`` and ``name``."""
        init = self.info.init if self.info is not None else None
        if init is None:
            return self.base.constructor_params if self.base is not None else list(self.fields)
        return [p.name.value for p in [*init.params.params[1:], *init.params.kwonly_params] if p.name.value != "name"]


@dataclasses.dataclass
class TransformPlan:
    """How one transform's call sites become NNX."""

    transform: Transform
    construction: cst.Call | None  # the one module call the transformed function amounts to, if so
    unit: Unit | None  # else the class the function becomes
    init: cst.SimpleStatementLine | None = None
    init_call: cst.Call | None = None
    params: str | None = None
    state: str | None = None  # transform_with_state: the name init's state is bound to
    #: Apply calls (by id of the original call) that call the model built at init directly.
    direct: set[int] = dataclasses.field(default_factory=set)
    applies: list[cst.Call] = dataclasses.field(default_factory=list)
    #: An init call was refused (and said why).
    init_refused: bool = False
    split: bool = False
    #: multi_transform: apply calls (by id of the original call) → the module method they call.
    methods: dict[int, str] = dataclasses.field(default_factory=dict)
    #: A factory's result (``a = make_model(4)``): the assignment, and the plan of the transform the factory returns
    #: (which now returns the model's constructor); the model is built by calling ``a`` where ``a.init`` was.
    declared: cst.Assign | None = None
    factory: TransformPlan | None = None
    #: The body the model is built in: the binding's, or the one top-level function that uses a module-level transform.
    scope: cst.CSTNode | None = None
    #: ``model.apply`` used as a value (``jax.jit(model.apply)``, ``apply_fn=model.apply``, ``fn = model.apply``):
    #: those attributes by id; they become the pure apply function, which then keeps Haiku's signature.
    apply_values: dict[int, cst.Attribute] = dataclasses.field(default_factory=dict)
    #: A factory's result passed to a helper (:mod:`h2f.nnx_helpers`): the name keeps the constructor, and a model
    #: built where ``init`` was is bound to ``instance``.
    passed: bool = False
    instance: str | None = None

    @property
    def name(self) -> str:
        return self.transform.name

    @property
    def model(self) -> str:
        """The name the model built where ``init`` was is bound to."""
        return self.instance or self.transform.name

    @property
    def graphdef(self) -> str:
        return f"{self.transform.name}_graphdef"

    @property
    def rest(self) -> str:
        return f"{self.transform.name}_rest"

    @property
    def apply_function(self) -> str:
        """transform_with_state: the pure function that stands for Haiku's apply (output, new state)."""
        return f"{self.transform.name}_apply"

    @property
    def passes_rng(self) -> bool:
        """Whether the pure apply function takes Haiku's rng (the model draws random numbers)."""
        return self.transform.apply_rng and self.uses_rng

    @property
    def binding(self) -> cst.CSTNode | None:
        """The statement that binds the transform's name (a factory's result: the assignment of its call)."""
        return self.declared or self.transform.binding

    @property
    def builder_params(self) -> list[str]:
        """The positional parameters of the model's constructor a factory returns (then ``*, rngs``)."""
        needs_size = self.unit.needs_size if self.unit is not None else self.construction_needs_size
        needs_dtype = self.unit.needs_dtype if self.unit is not None else self.construction_needs_dtype
        return [INPUT] * self.needs_input + [FLAT] * needs_size + [IN_DTYPE] * needs_dtype

    @property
    def takes_rng(self) -> bool:
        """Whether the pure apply function takes Haiku's rng argument (it stands for ``model.apply`` as a value,
        so it keeps Haiku's signature, or the model draws random numbers)."""
        return self.passes_rng or (bool(self.apply_values) and self.transform.apply_rng)

    @property
    def leading_arguments(self) -> int:
        """How many positional arguments Haiku's apply takes before the model's own: params, state, rng."""
        return 1 + (self.state is not None) + self.transform.apply_rng

    @property
    def needs_input(self) -> bool:
        if self.unit is not None:
            return self.unit.needs_input
        return self.construction is not None and self.construction_needs_input

    construction_needs_input: bool = False
    construction_needs_size: bool = False
    construction_needs_dtype: bool = False
    uses_rng: bool = False


class NnxPlan:
    """The NNX migration of one file (see the module docstring)."""

    def __init__(self, analysis: FileAnalysis) -> None:
        self.analysis = analysis
        self.blockers: list[tuple[cst.CSTNode, str]] = []
        #: Why NNX cannot build the modules eagerly where Linen builds them lazily (an input width h2f cannot
        #: follow): the unit, the node, the reason, the H2F100 message. With no other blocker the file takes the
        #: nnx.bridge fallback.
        self.eager_blockers: list[tuple[str, cst.CSTNode, str, str]] = []
        self.units: dict[int, Unit] = {}
        self.classes: dict[str, Unit] = {}
        self.submodules: dict[int, Submodule] = {}
        self.transforms: list[TransformPlan] = []
        #: Original constructions that are a transform's whole model (built at the init site).
        self.top_level: dict[int, TransformPlan] = {}
        self.init_statements: dict[int, TransformPlan] = {}
        self.bindings: dict[int, TransformPlan] = {}
        self.apply_calls: dict[int, TransformPlan] = {}
        #: ``init`` calls inside a statement's expression (``y = evaluate(model.init(key, x))``) → their transform.
        self.inline_inits: dict[int, TransformPlan] = {}
        #: The ``hk.transform(...)`` calls factories return (by id) → their plan (they return the constructor instead).
        self.factory_returns: dict[int, TransformPlan] = {}
        #: ``model.apply`` attributes used as values (by id) → their transform (see :attr:`TransformPlan.apply_values`).
        self.apply_values: dict[int, TransformPlan] = {}
        #: ``hk.layer_stack`` functions (by id) → the attribute of the stacked module; their calls (by id) → the same.
        self.stacked_functions: dict[int, str] = {}
        self.stacked_calls: dict[int, str] = {}
        #: ``hk.scan(cell, carry, xs)`` calls (by id) → what they scan; the classes of the scanned modules.
        self.scans: dict[int, ScanSite] = {}
        self.cells: set[str] = set()
        self._stacked_uses: dict[int, Submodule] = {}  # a stacked function's name node → its stacked module
        self._factories: dict[str, TransformPlan] = {}  # factory function name → the plan of what it returns
        self.removed_functions: set[int] = set()
        #: ``hk.set_state(name, value)`` statements → the state variable they write.
        self.state_writes: dict[int, Submodule] = {}
        #: ``hk.next_rng_key()`` calls (other than dropout's) inside converted modules.
        self.rng_calls: set[int] = set()
        #: Constructions that read ``<input>.shape[-1]`` → the name of that input.
        self.input_params: dict[int, str] = {}
        #: Constructions that read ``NAME.shape[-1]`` of a value of the method (other than an input never
        #: reassigned) → those names → the widths the flow finds for them there (see :meth:`_read_widths`).
        self.width_reads: dict[int, dict[str, list[Width]]] = {}
        #: The same constructions → those names → their one width, valid in ``__init__``.
        self.read_widths: dict[int, dict[str, str]] = {}
        self._read_sites: dict[int, str] = {}  # the same constructions → where they are (for the refusal)
        #: Whether any module keeps ``hk.get_state`` values (the file gets a variable type for them).
        self.uses_state = False
        #: Statements ``__init__`` now runs (see :attr:`Unit.lifted`) that the method no longer needs.
        self.moved_statements: set[int] = set()
        #: ``for`` statements (by id) that build submodules.
        self.loops: dict[int, Loop] = {}
        #: ``hk.Params``/``hk.State`` annotations (they become ``nnx.State``).
        self.state_annotations: list[cst.CSTNode] = []
        #: ``hk.Transformed`` (…) as the return type of a factory (by id) → the plan of what the factory returns.
        self.factory_annotations: dict[int, TransformPlan] = {}
        self._transform_annotations: list[tuple[cst.CSTNode, str, cst.FunctionDef]] = []
        self._param_annotations: list[tuple[cst.CSTNode, str, cst.Param]] = []
        #: Functions that receive a transform and call its init/apply (see :mod:`h2f.nnx_helpers`), their calls
        #: (by id), the statements holding their apply calls (by id), the transforms passed to them (by id).
        self.helpers: list[Helper] = []
        self.helper_inits: dict[int, Helper] = {}
        self.helper_applies: dict[int, HelperApply] = {}
        self.helper_statements: dict[int, list[HelperApply]] = {}
        self.helper_arguments: set[int] = set()
        self._build()

    @property
    def blocked(self) -> bool:
        """Whether the file is left as it is."""
        return bool(self.blockers)

    @property
    def bridged(self) -> bool:
        """Whether the file takes the nnx.bridge fallback: its modules go through the Linen rules and each model is
        wrapped in ``nnx.bridge.ToNNX`` where Haiku called ``init`` (see :mod:`h2f.rules.nnx_target`)."""
        return not self.blockers and bool(self.eager_blockers)

    @property
    def all_blockers(self) -> list[tuple[cst.CSTNode, str]]:
        """Every reason the modules cannot be built eagerly, in the order found (H2F100 when the file is left in place)."""
        return [*self.blockers, *((node, message) for _, node, _, message in self.eager_blockers)]

    def block(self, node: cst.CSTNode, message: str) -> None:
        """Record why the file cannot be migrated to NNX."""
        self.blockers.append((node, message))

    def block_eager(self, unit: Unit, node: cst.CSTNode, reason: str, width: bool = False) -> None:
        """Record why ``unit`` cannot be built eagerly although Linen can build it lazily (the bridge fallback);
        ``width``: the reason is an input width NNX needs at construction."""
        needs = "nnx needs it at construction; " if width else ""
        self.eager_blockers.append(
            (unit.name, node, reason, f"{unit.name}: {reason}: {needs}not supported by the nnx target yet")
        )

    def bridge_reasons(self, plan: TransformPlan) -> list[str]:
        """The eager blockers of the classes ``plan``'s model is built from."""
        seen = self._model_classes(plan)
        return [reason for name, _, reason, _ in self.eager_blockers if name in seen]

    def _model_classes(self, plan: TransformPlan) -> set[str]:
        """The classes ``plan``'s model is built from: its class, their submodule classes and bases."""
        first = plan.unit or (
            self.classes.get(plan.construction.func.value)
            if m.matches(plan.construction, m.Call(func=m.Name()))
            else None
        )  # type: ignore[union-attr]
        seen: set[str] = set()
        pending = [first]
        while pending:
            unit = pending.pop()
            if unit is None or unit.name in seen:
                continue
            seen.add(unit.name)
            pending += [self.classes.get(s.api) for s in [*unit.submodules, *unit.inherited] if s.kind == "local"]
            pending.append(unit.base)
        return seen

    def bridge_model_name(self, plan: TransformPlan) -> str:
        """The name of the class (or Haiku layer) ``plan``'s model is built from, for messages (a bridged model's H2F102)."""
        return plan.unit.name if plan.unit is not None else code_of(plan.construction.func)  # type: ignore[union-attr]

    def _check_bridge(self) -> None:
        """The bridge fallback wraps the Linen model of each transform the file builds (state and rngs included: the
        apply function passes ``mutable=`` on, ``nnx.reseed`` reaches the wrapper's rngs): block library classes,
        ``hk.Params`` annotations and factories."""
        if not self.bridged:
            return
        for plan in self.transforms:
            # nnx.bridge.ToNNX draws from its rng streams on every call, which fails inside a jax.vmap or jax.jit of
            # the function: a call there merges the model afresh, in the caller's trace.
            deferred = self._deferred(plan)
            if plan.direct & deferred:
                plan.direct -= deferred
                plan.split = True
        built = set().union(*(self._model_classes(plan) for plan in self.transforms))
        for name, unit in self.classes.items():
            if name not in built:  # a library class: whoever builds it expects an NNX module
                self.block(
                    unit.node,
                    f"{name}: not built by a model of this file, so the nnx.bridge fallback would leave it a Linen class: not supported by the nnx target yet",
                )
        for node in self.state_annotations:
            self.block(
                node,
                f"{self.analysis.haiku_name(node)} annotation in a file the nnx.bridge fallback migrates: not supported by the nnx target yet",
            )
        for plan in [*self.transforms, *self.factory_returns.values()]:
            node = plan.init_call or plan.binding or self.analysis.module
            if plan.factory is not None or id(plan.binding) in self.factory_returns:
                self.block(
                    node,
                    f"{plan.name}: a transform a factory returns, which the nnx.bridge fallback does not build yet: not supported by the nnx target yet",
                )
            elif plan.passed:
                self.block(
                    node,
                    f"{plan.name}: a transform passed to a function that calls its init/apply, which the nnx.bridge fallback does not build yet: not supported by the nnx target yet",
                )

    # ----- building ------------------------------------------------------------------------------------

    def _build(self) -> None:
        self._check_apis()
        self._check_imported_modules()
        self._check_exported_module_classes()
        self._check_positional_names()
        self._check_imported_initializers()
        for info in self.analysis.module_classes.values():
            base = self.classes.get(info.local_base or "") if info.haiku_base is None else None
            if (info.haiku_base != "haiku.Module" or info.local_base is not None) and base is None:
                what = (
                    f"a subclass of {info.haiku_base}"
                    if info.haiku_base not in (None, "haiku.Module")
                    else "a subclass of a module class defined after it or not migrated"
                )
                self.block(info.node, f"{info.name}: {what} is not supported by the nnx target yet")
                continue
            problem = self._decorated_class_problem(info) if info.node.decorators else None
            if problem is not None:
                self.block(info.node, f"{info.name}: {problem} is not supported by the nnx target yet")
                continue
            unit = Unit(info.name, info.node, info, base=base)
            if info.node.decorators:  # a dataclass module: each field is a parameter, stored as it is
                unit.fields = [name for name in _field_names(info.node) if name != "name"]
                unit.stored = {name: name for name in unit.fields}
            self.units[id(info.node)] = unit
            self.classes[info.name] = unit
        for transform in self.analysis.transforms.values():
            self._plan_transform(transform)
        self._plan_factory_results()
        self._check_factory_annotations()
        find_helpers(self, self._param_annotations)
        if self.blocked:
            return
        self._find_external_methods()
        for unit in list(self.units.values()):
            self._analyse(unit, ())
        self._check_cells()
        for plan in [*self.factory_returns.values(), *self.transforms]:
            self._plan_construction(plan)
        plan_helper_calls(self)
        for plan in self.transforms:
            self._plan_call_sites(plan)
        self._check_everything_placed()
        self._check_moved_params()
        self._check_bridge()

    def _inherit(self, unit: Unit, stack: tuple[str, ...]) -> list[Submodule]:
        """Analyse the base class of ``unit``; keep the submodules it builds that ``unit`` uses, and return
        those it builds for the methods ``unit`` overrides."""
        base = unit.base
        assert base is not None
        self._analyse(base, (*stack, unit.name))
        unit.uses_rng |= base.uses_rng
        unit.stores_rngs |= base.stores_rngs
        own = set(unit.info.methods) - {"__init__"} if unit.info is not None else set()
        kept, replaced = [], []
        for submodule in [*base.submodules, *base.inherited]:
            method = self.analysis.enclosing(submodule.call, cst.FunctionDef)
            overridden = submodule.hoisted and isinstance(method, cst.FunctionDef) and method.name.value in own
            (replaced if overridden else kept).append(submodule)
        unit.inherited = kept
        if unit.info is None or unit.info.init is None:
            unit.stored = dict(base.stored)
        init = next((u.info.init for u in _lineage(base) if u.info is not None and u.info.init is not None), None)
        if init is not None and (isinstance(init.params.star_arg, cst.Param) or init.params.star_kwarg is not None):
            self.block(
                unit.node, f"{unit.name}: its base's __init__ takes *args/**kwargs: not supported by the nnx target yet"
            )
        if base.needs_size:
            self.block_eager(unit, unit.node, f"{base.name} flattens its input, whose size is only known at the top")
        if base.needs_dtype:
            self.block(
                unit.node,
                f"{unit.name}: {base.name} creates variables with its input's dtype, which a subclass would have to pass on: not supported by the nnx target yet",
            )
        return replaced

    def _find_external_methods(self) -> None:
        """Note the methods of the file's module classes that are called on an instance (``net.encode(x)``)."""
        for node in self.analysis.nodes:
            if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)) or m.matches(
                node.func.value, m.Name("self")
            ):
                continue
            owner = node.func.value
            construction = owner if isinstance(owner, cst.Call) else self.analysis.constructor_of(owner)
            info = self.analysis.local_module_class(construction.func) if isinstance(construction, cst.Call) else None
            unit = self.classes.get(info.name) if info is not None else None
            name = node.func.attr.value
            if unit is not None and name in unit.methods and name not in ("__call__", "__init__"):
                for ancestor in _lineage(unit):
                    ancestor.external.add(name)

    def _check_everything_placed(self) -> None:
        """Every layer, variable and dropout call must belong to a module the plan converts."""
        reported = {id(node) for node, _ in self.all_blockers}
        for node in self.analysis.nodes:
            if not isinstance(node, cst.Call):
                continue
            api = self.analysis.haiku_name(node.func)
            if api == "haiku.next_rng_key" and (id(node) in self.rng_calls or self._is_dropout_key(node)):
                continue
            if (
                api not in NNX_LAYERS
                and api not in VARIABLES
                and api not in ("haiku.dropout", "haiku.set_state", "haiku.next_rng_key")
            ):
                continue
            if (
                id(node) in self.submodules
                or id(node) in self.top_level
                or id(node) in reported
                or self._in_stack(node)
            ):
                continue
            statement = self.analysis.parents.get(self.analysis.parents.get(node))
            if id(statement) in self.state_writes:
                continue
            self.block(
                node,
                f"{api} outside a module class or transformed function the nnx target converts: not supported by the nnx target yet",
            )

    def _check_imported_initializers(self) -> None:
        """``from config import W_INIT`` where config.py binds a Haiku initializer: the NNX target leaves such a
        module-level initializer in place (Haiku's), so a layer here cannot take it."""
        for node in self.analysis.nodes_of(cst.Name) if self.analysis.imported_initializers else []:
            parent = self.analysis.parents.get(node)
            if isinstance(parent, (cst.ImportAlias, cst.Attribute)) or not self.analysis.imported_initializer(node):  # type: ignore[arg-type]
                continue
            self.block(
                node,
                f"{node.value} is a Haiku initializer another file binds at module level, which the nnx target "  # type: ignore[attr-defined]
                "leaves as it is: not supported by the nnx target yet",
            )

    def _check_positional_names(self) -> None:
        """``Block(8, "block_a")``: the NNX attribute is named after the module's name, read from ``name=``."""
        for node in self.analysis.nodes_of(cst.Call):
            named = self.analysis.positional_name(node)  # type: ignore[arg-type]
            if named is not None:
                self.block(
                    named,
                    f"{code_of(node.func)} given its name by position (name={code_of(named.value)}): not supported by "  # type: ignore[attr-defined]
                    "the nnx target yet",
                )

    def _check_imported_modules(self) -> None:
        """A module code builds from a class or function imported from elsewhere (``Net(3)(x)``, ``self.net =
        Net(3)`` then ``self.net(x)``) may be a Haiku module another file defines: NNX would build it in
        ``__init__``, with its input width. h2f does not follow it into that file: the file is refused."""
        for node in self.analysis.nodes_of(cst.Call):
            construction = self.analysis.constructor_of(node.func)  # type: ignore[attr-defined]
            if (
                construction is None
                or not isinstance(construction.func, (cst.Name, cst.Attribute))
                or self.analysis.haiku_name(construction.func) is not None
                or not self.analysis.runs_imported_code(construction)
                or self.analysis.module_scope(node) is None
            ):
                continue
            self.block(
                construction,
                f"{code_of(construction.func)} is imported, built and called in a module: if it is a Haiku module of "
                "another file, NNX builds it in __init__ with its input width; not supported by the nnx target yet",
            )

    def _check_exported_module_classes(self) -> None:
        """A module class another file of the run imports: that file cannot be migrated with it (h2f does not
        follow a module class across files on this target, :meth:`_check_imported_modules`), and would be left
        calling an NNX class with Haiku's arguments; so this file stays as it is too."""
        for module_class in self.analysis.module_classes.values():
            if self.analysis.imported_elsewhere(module_class):
                self.block(
                    module_class.node,
                    f"{module_class.name} is imported by another file of the run, which the nnx target cannot "
                    "migrate with it (it does not follow a module class across files yet)",
                )

    def _check_apis(self) -> None:
        for node in self.analysis.nodes:
            if not isinstance(node, (cst.Name, cst.Attribute)):
                continue
            parent = self.analysis.parents.get(node)
            if isinstance(parent, cst.Attribute) and parent.value is node:
                continue
            if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Call):
                continue  # an attribute of a call's result (``hk.Flatten()(x).mean``): the callee is checked
            name = self.analysis.haiku_name(node)
            if name is None or name in SUPPORTED or name in ("haiku",):
                continue
            if self.analysis.enclosing(node, cst.Import) or self.analysis.enclosing(node, cst.ImportFrom):
                continue
            if name in STATE_ANNOTATIONS | TRANSFORM_ANNOTATIONS and self._annotation(node, name):
                continue
            if name.startswith("haiku.initializers.") and (
                self._in_layer_arguments(node) or self._named_for_layers(node)
            ):
                problem = self._untranslatable_initializer(node, name)
                if problem is not None:
                    self.block(node, f"{problem}: not supported by the nnx target yet")
                continue  # the layers rule translates a layer's initializers
            if name in PAD_FUNCTIONS and self._in_layer_arguments(node):
                continue  # the layers rule spells out a padding function, or keeps the layer (the file stays)
            if name == "haiku.layer_stack" and self._layer_stack_decorator(node):
                continue  # the stacked module is planned with the method that holds it
            if name == "haiku.scan" and self._scan_call(node):
                continue  # the scanned module is planned with the method that builds it
            if name == "haiku.Module.__init__" and self._is_base_init_call(node):
                continue
            if name in POOLING:
                problem = self._untranslatable_pooling(node)
                if problem is not None:
                    self.block(node, f"{problem}: not supported by the nnx target yet")
                continue
            if name in RESHAPE_PARAMS:
                from h2f.rules.reshape import untranslatable

                call = self.analysis.parents.get(node)
                problem = untranslatable(self.analysis, call) if isinstance(call, cst.Call) else f"{name} not built"
                if problem is not None:
                    self.block(node, f"{problem}: not supported by the nnx target yet")
                continue
            self.block(node, f"{name} is not supported by the nnx target yet")

    def _decorated_class_problem(self, info: ModuleClass) -> str | None:
        """Why the decorated module class ``info`` cannot be an NNX class, or None: a bare ``@dataclasses.dataclass``
        whose annotated fields become ``__init__``'s parameters (:func:`h2f.rules.nnx_modules.dataclass_init`)."""
        decorators = info.node.decorators
        if len(decorators) != 1 or self.analysis.dataclass_decorator(info.node) is None:
            what = code_of(decorators[0].decorator)
            return f"a module class decorated with @{what} (its constructor is not the __init__ in its body)"
        if info.local_base is not None or any(
            other.local_base == info.name for other in self.analysis.module_classes.values()
        ):
            return "a dataclass module with a dataclass base or subclass"
        if info.init is not None or "__post_init__" in info.methods:
            return "a dataclass module with its own __init__/__post_init__"
        for statement in info.node.body.body:
            field = annotated_field(statement)
            if field is None:
                continue
            kind = field.annotation.annotation
            kind = kind.value if isinstance(kind, cst.Subscript) else kind
            if isinstance(field.value, cst.Call) or self.analysis.qualified_names(kind) & {
                "typing.ClassVar",
                "dataclasses.InitVar",
            }:
                return f"a dataclass field `{code_of(field)}` (a ClassVar, InitVar or field(...))"
        return None

    def _annotation(self, node: cst.CSTNode, name: str) -> bool:
        """Whether ``node`` (a Haiku type) is an annotation the nnx target translates: ``hk.Params``/``hk.State``
        anywhere in one, ``hk.Transformed`` (…) as a function's return type (checked to be a factory's later)."""
        annotation = self.analysis.enclosing(node, cst.Annotation)
        if annotation is None:
            return False
        if name in STATE_ANNOTATIONS:
            self.state_annotations.append(node)
            return True
        function = self.analysis.parents.get(annotation)
        if isinstance(function, cst.FunctionDef) and function.returns is annotation:
            self._transform_annotations.append((node, name, function))
        elif isinstance(function, cst.Param):
            self._param_annotations.append((node, name, function))  # a helper's, if it is one (h2f.nnx_helpers)
        else:
            self.block(
                node,
                f"{name} as the type of a parameter or variable: a transform passed around as a value (to call its init/apply elsewhere) is not supported by the nnx target yet (it builds the model where Haiku called init)",
            )
        return True

    def passed_plan(self, node: cst.BaseExpression) -> TransformPlan | None:
        """The plan of the transform the original ``node`` names, if it is one of the file's."""
        transform = self.analysis.transform_named(node) if isinstance(node, cst.Name) else None
        return next((plan for plan in self.transforms if transform is not None and plan.transform is transform), None)

    def _check_factory_annotations(self) -> None:
        """``def make_model() -> hk.Transformed`` types a factory the plan converts: it returns the model's constructor."""
        for node, name, function in self._transform_annotations:
            plan = self._factories.get(function.name.value)
            if plan is None or self.analysis.parents.get(function) is not self.analysis.module:
                self.block(
                    node,
                    f"{name} as the return type of {function.name.value}, which does not return one transform the nnx target turns into the model's constructor: not supported by the nnx target yet",
                )
            else:
                self.factory_annotations[id(node)] = plan

    def _in_layer_arguments(self, node: cst.CSTNode) -> bool:
        current = self.analysis.parents.get(node)
        while current is not None and not isinstance(current, cst.BaseStatement):
            if isinstance(current, cst.Call) and (
                self.analysis.is_haiku_layer_call(current) in NNX_LAYERS
                or self.analysis.haiku_name(current.func) in VARIABLES
            ):
                return True
            current = self.analysis.parents.get(current)
        return False

    def _untranslatable_initializer(self, node: cst.CSTNode, name: str) -> str | None:
        """Why the initializers rule leaves the ``hk.initializers`` call whose callee is ``node`` in place, if it does."""
        from h2f.rules.initializers import untranslatable

        call = self.analysis.parents.get(node)
        if not isinstance(call, cst.Call) or call.func is not node or name not in INITIALIZERS:
            return f"{name} other than called"
        return untranslatable(call, name)

    def _untranslatable_pooling(self, node: cst.CSTNode) -> str | None:
        """Why the pooling rule leaves the call whose callee is ``node`` in place, if it does."""
        from h2f.rules.pooling import untranslatable

        call = self.analysis.parents.get(node)
        if (
            isinstance(call, cst.Call)
            and call.func is node
            and self.analysis.haiku_name(node) in ("haiku.MaxPool", "haiku.AvgPool")
        ):
            call = self.analysis.parents.get(call)  # hk.AvgPool(...)(x): the call on the input
            if not isinstance(call, cst.Call):
                return f"{self.analysis.haiku_name(node)} other than built and called at once"
        if not isinstance(call, cst.Call):
            return f"{self.analysis.haiku_name(node)} other than called"
        return untranslatable(self.analysis, call)

    def _named_for_layers(self, node: cst.CSTNode) -> bool:
        """``init = hk.initializers.X(...)`` (``node`` is its callee) whose name only ever goes to layers."""
        call = self.analysis.parents.get(node)
        assign = self.analysis.parents.get(call)
        if not (
            isinstance(call, cst.Call)
            and call.func is node
            and isinstance(assign, cst.Assign)
            and assign.value is call
            and len(assign.targets) == 1
            and isinstance(assign.targets[0].target, cst.Name)
        ):
            return False
        target = assign.targets[0].target
        scope = self.analysis.scopes.get(target)
        assignments = list(scope[target.value]) if scope is not None else []
        if len(assignments) != 1:
            return False
        references = assignments[0].references
        return bool(references) and all(self._in_layer_arguments(reference.node) for reference in references)

    def _is_base_init_call(self, node: cst.CSTNode) -> bool:
        """``hk.Module.__init__(self, ...)`` as a statement of a module class's ``__init__``."""
        call = self.analysis.parents.get(node)
        statement = self.analysis.parents.get(self.analysis.parents.get(call))
        init = self.analysis.enclosing(node, cst.FunctionDef)
        return (
            isinstance(call, cst.Call)
            and isinstance(statement, cst.SimpleStatementLine)
            and isinstance(init, cst.FunctionDef)
            and init.name.value == "__init__"
            and self.analysis.enclosing_module_class(node) is not None
        )

    # ----- classes -------------------------------------------------------------------------------------

    def _analyse(self, unit: Unit, stack: tuple[str, ...]) -> None:
        """Find the unit's submodules, name them, and follow the widths through its methods."""
        if unit.analysed or unit.name in stack:
            return
        unit.analysed = True
        taken: set[str] = set()
        methods: list[cst.FunctionDef] = []
        replaced: list[Submodule] = []
        if unit.base is not None:
            replaced = self._inherit(unit, stack)
            taken |= set(unit.methods) | {s.attribute for s in unit.inherited}
        if unit.info is not None:
            taken |= set(unit.info.methods)
            if unit.info.init is not None:
                taken |= self.analysis.stored_attributes(unit.info.init)  # (``self.dropout = dropout``, a rate)
                self._init_submodules(unit, unit.info.init, taken)
                unit.stored = _stored_parameters(unit.info.init, unit.constructor_params)
            methods = [method for name, method in unit.info.methods.items() if name != "__init__"]
        else:
            methods = [unit.node]  # type: ignore[list-item]
        for method in methods:
            self._method_submodules(unit, method, taken)
        unused = {s.attribute for s in replaced} - {s.attribute for s in unit.submodules}
        if unused:
            self.block(
                unit.node,
                f"{unit.name}: {unit.base.name}.__init__ builds {', '.join(sorted(unused))} for methods {unit.name} overrides, which it would keep unused: not supported by the nnx target yet",
            )  # type: ignore[union-attr]
        for submodule in unit.submodules:
            if submodule.kind == "local":
                child = self.classes[submodule.api]
                self._analyse(child, (*stack, unit.name))
                unit.uses_rng |= child.uses_rng
            elif submodule.kind == "dropout":
                unit.uses_rng = True
        if unit.base is not None:
            own = set(unit.info.methods) if unit.info is not None else set()
            methods = [
                method
                for name, method in unit.methods.items()
                if name != "__init__" and (name in own or name == "__call__" or name in unit.external)
            ]
        self._widths(unit, methods)
        for loop in self.loops.values():
            if loop.owner == unit.name:
                loop.reads_targets = any(
                    isinstance(node, cst.Name) and node.value in loop.targets and not self._in_hoisted(node)
                    for node in self.analysis.subtree(loop.node.body)
                )
        for statement in unit.lifted:
            method = self.analysis.enclosing(statement, cst.FunctionDef)
            names = assigned_names(statement)
            if method is not None and not any(
                isinstance(node, cst.Name)
                and node.value in names
                and not self._inside(node, statement)
                and not self._in_hoisted(node)
                for node in self.analysis.subtree(method.body)
            ):
                self.moved_statements.add(id(statement))

    def _init_submodules(self, unit: Unit, init: cst.FunctionDef, taken: set[str]) -> None:
        for node in self.analysis.subtree(init.body):
            if not isinstance(node, cst.Call) or not self._constructs(node):
                if isinstance(node, cst.Call) and self.analysis.haiku_name(node.func) == "haiku.dropout":
                    self.block(node, "hk.dropout in __init__ is not supported by the nnx target yet")
                continue
            parent = self.analysis.parents.get(node)
            if isinstance(parent, cst.IfExp) and m.matches(
                parent.orelse if parent.body is node else parent.body, m.Name("None")
            ):
                parent = self.analysis.parents.get(parent)  # ``self.proj = hk.Conv2D(...) if stride != 1 else None``
            target = parent.targets[0].target if isinstance(parent, cst.Assign) and len(parent.targets) == 1 else None
            if not m.matches(target, m.Attribute(m.Name("self"), m.Name())) or self.analysis.in_loop(node, init):
                self.block(
                    node,
                    f"{unit.name}.__init__ builds a submodule other than as `self.<name> = ...`: not supported by the nnx target yet",
                )
                continue
            attribute = target.attr.value  # type: ignore[union-attr]
            taken.add(attribute)
            taken.add(self._haiku_name(node, taken))
            self._add(unit, Submodule(node, attribute, *self._kind(node), hoisted=False))

    def _conditional(self, node: cst.CSTNode, method: cst.FunctionDef) -> bool:
        """Whether the original ``node`` runs only under a condition within ``method`` (an ``if``, a conditional
        expression, ``and``/``or``, a ``try``, a ``match``)."""
        return self.analysis.inside(node, (cst.If, cst.IfExp, cst.BooleanOperation, cst.Try, cst.Match), method)

    def _method_submodules(self, unit: Unit, method: cst.FunctionDef, taken: set[str]) -> None:
        local = self.analysis.local_names(method) - {"self"}
        variables: dict[str, Submodule] = {v.attribute: v for v in unit.submodules if v.kind in ("param", "state")}
        writes: list[cst.Call] = []
        looped: dict[str, Loop] = {}  # Haiku names of modules built in loops → the loop
        for node in self.analysis.subtree(method.body):
            if not isinstance(node, cst.Call):
                continue
            api = self.analysis.haiku_name(node.func)
            if api in VARIABLES:
                self._variable(unit, method, node, VARIABLES[api], local, taken, variables)
                continue
            if api == "haiku.set_state":
                writes.append(node)
                continue
            if api == "haiku.next_rng_key" and not self._is_dropout_key(node):
                self.rng_calls.add(id(node))
                unit.stores_rngs = unit.uses_rng = True
                continue
            is_dropout = api == "haiku.dropout"
            if not is_dropout and not self._constructs(node):
                continue
            if self._in_stack(node):
                continue  # a layer of an hk.Sequential: part of that submodule
            where = f"{unit.name}.{method.name.value}" if unit.info is not None else method.name.value
            loop = None
            site = self._stack_site_of(node, method)
            if site is not None:
                if not _valid_in_init(site.count, local) and not self._moves_to_init(unit, method, site.count):
                    self.block(
                        site.count,
                        f"{where}: hk.layer_stack's count ({code_of(site.count)}) is computed in the method; NNX builds the layers in __init__: not supported by the nnx target yet",
                    )
                    continue
            elif self.analysis.in_loop(node, method):
                loop, problem = self._loop(unit, method, node, local)
                if loop is None:
                    self.block(
                        node,
                        f"{where} builds a submodule in a loop or nested function{problem}: not supported by the nnx target yet",
                    )
                    continue
            if not is_dropout and site is None and self._conditional(node, method):
                self.block(
                    node,
                    f"{where} builds a {self._kind(node)[1]} under a condition: NNX builds it in __init__ whether or not "
                    "the condition holds (its parameters would exist unused): not supported by the nnx target yet",
                )
                continue
            built_from = node.func if not is_dropout else _dropout_rate(node)
            arguments = node.args if not is_dropout else ([] if built_from is None else [cst.Arg(built_from)])
            input_param = self._input_param(unit, method)
            if input_param is not None and not is_dropout:
                arguments = [input_width_of(arg, input_param) for arg in arguments]  # type: ignore[misc]
            reads = (
                set()
                if is_dropout or loop is not None or site is not None
                else set().union(*map(width_reads, arguments)) & local
            )
            if reads:  # ``x.shape[-1]``: the width the flow finds for ``x`` there (see _read_widths)
                arguments = [replace_matching(arg, LAST_SIZE, cst.Name("None")) for arg in arguments]
            uses = _names_read(arguments) & local
            uses -= self._argument_keywords(arguments) | (loop.targets if loop is not None else set())
            if uses and self._lift(unit, method, node, uses, local):
                uses = set()
            if uses:
                self.block(node, _own_arguments(where, uses | reads))
                continue
            if reads:
                self.width_reads[id(node)] = {name: [] for name in reads}
                self._read_sites[id(node)] = where
            if is_dropout:
                if built_from is None:
                    self.block(node, "hk.dropout call the nnx target cannot read")
                    continue
                attribute = unique_name("dropout", taken)
                taken.add(attribute)
                submodule = Submodule(node, attribute, "dropout", "haiku.dropout", hoisted=True, loop=loop)
                self._add(unit, submodule)
                if loop is not None:
                    loop.submodules.append(submodule)
                    loop.items[id(submodule)] = unique_name(attribute, local | set(loop.items.values()))
                continue
            targets = loop.targets if loop is not None else set()
            attribute = self._haiku_name(node, taken, targets)
            base = self._haiku_name(node, set(), targets)
            if base in looped and looped[base] is not loop:
                self.block(
                    node,
                    f"{where}: Haiku names this {self._kind(node)[1]} after the ones a loop above builds (its name depends on the loop's length): not supported by the nnx target yet",
                )
                continue
            taken.add(attribute)
            submodule = Submodule(
                node,
                attribute,
                *self._kind(node),
                hoisted=True,
                loop=loop,
                stack=site.count if site is not None else None,
            )
            if site is not None:
                self.stacked_functions[id(site.function)] = attribute
                self.stacked_calls.update((id(stacked), attribute) for stacked in site.calls)
                self._stacked_uses[id(site.function.name)] = submodule
            self._add(unit, submodule)
            if loop is not None:
                looped[base] = loop
                loop.submodules.append(submodule)
                loop.items[id(submodule)] = unique_name(attribute, local | set(loop.items.values()))
            read = _names_read(arguments) & {INPUT, IN_DTYPE}
            if input_param is not None and read:
                self.input_params[id(node)] = input_param
                unit.needs_input |= INPUT in read
                unit.needs_dtype |= IN_DTYPE in read

        for write in writes:
            self._state_write(unit, write, variables)

    def _in_hoisted(self, node: cst.CSTNode) -> bool:
        """Whether ``node`` is part of a construction that moves to ``__init__``."""
        current = self.analysis.parents.get(node)
        while current is not None and not isinstance(current, cst.BaseStatement):
            submodule = self.submodules.get(id(current))
            if submodule is not None and submodule.hoisted and submodule.call is current:
                return True
            current = self.analysis.parents.get(current)
        return False

    def _lift(self, unit: Unit, method: cst.FunctionDef, node: cst.Call, names: set[str], local: set[str]) -> bool:
        """Let ``__init__`` compute the method's ``names`` that the construction ``node`` reads, if each is bound
        once, by a plain assignment among the method's first statements, from values ``__init__`` has."""
        init = unit.info.init if unit.info is not None else None
        reserved = (
            (self.analysis.local_names(init) if init is not None else set())
            | {param.name.value for param in method.params.params}  # the call's arguments: __init__ has none
            | {"self", "rngs", INPUT, FLAT, IN_DTYPE}
        )
        statements = list(method.body.body)
        position = next((i for i, statement in enumerate(statements) if self._inside(node, statement)), len(statements))
        bound: dict[str, cst.SimpleStatementLine] = {}
        for statement in statements[:position]:
            for name in assigned_names(statement):
                bound[name] = statement if name not in bound else None  # type: ignore[assignment]
        if assigned_names(method.body) & names - bound.keys():
            return False
        needed: list[cst.SimpleStatementLine] = []
        inputs: dict[int, tuple[str, set[str]]] = {}  # statements reading the input's width/dtype → (input, which)
        todo = sorted(names)
        while todo:
            name = todo.pop()
            statement = bound.get(name)
            if statement is None or name in reserved:
                return False
            if not m.matches(statement, m.SimpleStatementLine([m.Assign([m.AssignTarget(m.Name() | m.Tuple())])])):
                return False
            if _rebinds(method.body, name):
                return False
            if any(s is statement for s in needed):
                continue
            needed.append(statement)
            value = statement.body[0].value  # type: ignore[attr-defined]
            input_param = self._input_param(unit, method, before=statement)
            if input_param is not None:  # ``width = x.shape[-1]``: __init__ has the input's width
                value = input_width_of(value, input_param)
                if read := _names_read([value]) & {INPUT, IN_DTYPE}:
                    inputs[id(statement)] = input_param, read
            reads = {n.value for n in walk(value) if isinstance(n, cst.Name)} & local
            if not _valid_in_init(value, local - set(bound)) or any(
                isinstance(n, cst.Call) and (self.analysis.haiku_name(n.func) or self._constructs(n))
                for n in self.analysis.subtree(statement)
            ):
                return False  # (a statement that builds or runs Haiku code stays in the method)
            todo.extend(sorted(reads - {n for s in needed for n in assigned_names(s)}))
        for statement in statements[:position]:
            if any(s is statement for s in needed) and not any(s is statement for s in unit.lifted):
                unit.lifted.append(statement)
                unit.lifted_names |= assigned_names(statement)
        for key, (input_param, read) in inputs.items():
            self.input_params[key] = input_param
            unit.needs_input |= INPUT in read
            unit.needs_dtype |= IN_DTYPE in read
        order = {id(statement): index for index, statement in enumerate(statements)}
        unit.lifted.sort(key=lambda statement: order.get(id(statement), -1))
        return True

    def _loop(self, unit: Unit, method: cst.FunctionDef, node: cst.Call, local: set[str]) -> tuple[Loop | None, str]:
        """The loop of ``method`` that builds ``node`` if ``__init__`` can repeat it, else (None, why not)."""
        statement: cst.CSTNode | None = None
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(current, cst.For):
            if isinstance(current, cst.BaseCompoundStatement) or isinstance(current, (cst.BaseComp, cst.Lambda)):
                return None, " other than directly in the body of a `for` statement"
            if isinstance(current, (cst.IfExp, cst.BooleanOperation)):
                return None, " under a condition"
            if isinstance(current, cst.BaseStatement):
                statement = current
            current = self.analysis.parents.get(current)
        body = self.analysis.parents.get(current) if current is not None else None
        if (
            not isinstance(current, cst.For)
            or not any(s is statement for s in current.body.body)
            or self.analysis.parents.get(body) is not method
        ):
            return None, " other than directly in the body of a `for` statement of the method"
        if current.orelse is not None or current.asynchronous is not None:
            return None, " (a `for` with `else` or `async for`)"
        exits = [n for n in self.analysis.subtree(current.body) if isinstance(n, (cst.Break, cst.Continue, cst.Return))]
        if exits:
            return (
                None,
                f" that may end an iteration early (`{type(exits[0]).__name__.lower()}`: Haiku then builds fewer modules)",
            )
        if not _valid_in_init(current.iter, local):
            return None, f" over {code_of(current.iter)}, which __init__ cannot read"
        targets = {n.value for n in self.analysis.subtree(current.target) if isinstance(n, cst.Name)}
        if not m.matches(current.target, m.Name() | m.Tuple([m.ZeroOrMore(m.Element(m.Name()))])):
            return None, " with a loop target other than names"
        init_names = (
            self.analysis.local_names(unit.info.init) if unit.info is not None and unit.info.init is not None else set()
        )
        reserved = init_names | {"self", "rngs", INPUT, FLAT, IN_DTYPE}
        rebound = targets & assigned_names(current.body)
        if targets & reserved or rebound:
            return (
                None,
                f" whose loop variable ({', '.join(sorted((targets & reserved) | rebound))}) __init__ cannot reuse",
            )
        loop = self.loops.get(id(current))
        if loop is None:
            loop = Loop(current, unit.name, targets, LoopWidths(reserved | targets | local))
            self.loops[id(current)] = loop
        return loop, ""

    def _variable(
        self,
        unit: Unit,
        method: cst.FunctionDef,
        node: cst.Call,
        kind: str,
        local: set[str],
        taken: set[str],
        variables: dict[str, Submodule],
    ) -> None:
        """``hk.get_parameter``/``hk.get_state``: an ``nnx.Param``/state variable built in ``__init__``."""
        api = "hk.get_parameter" if kind == "param" else "hk.get_state"
        bound = bind_arguments(node, ("name", "shape", "dtype", "init"))
        name = bound.get("name") if bound else None
        value = name.value.evaluated_value if name is not None and isinstance(name.value, cst.SimpleString) else None
        if (
            bound is None
            or not isinstance(value, str)
            or not value.isidentifier()
            or not {"shape", "init"} <= bound.keys()
        ):
            self.block(node, f"{api} without a constant name, a shape and an init: not supported by the nnx target yet")
            return
        if self.analysis.in_loop(node, method):
            self.block(node, f"{api} in a loop or nested function: not supported by the nnx target yet")
            return
        input_param = self._input_param(unit, method)
        values = {
            key: input_width_of(arg.value, input_param) if input_param is not None else arg.value
            for key, arg in bound.items()
        }
        read = {n.value for v in values.values() for n in self.analysis.subtree(v) if isinstance(n, cst.Name)} & {
            INPUT,
            IN_DTYPE,
        }  # x.shape[-1], x.dtype
        uses = {n.value for v in values.values() for n in self.analysis.subtree(v) if isinstance(n, cst.Name)} & local
        if uses and self._lift(unit, method, node, uses, local):
            uses = set()
        if uses:
            dtype = (
                {n.value for n in self.analysis.subtree(bound["dtype"].value) if isinstance(n, cst.Name)} & local
                if "dtype" in bound
                else set()
            )
            if dtype:
                what = f"takes its dtype from the call's own values ({code_of(bound['dtype'].value)}), not the dtype of the module's input; NNX creates variables in __init__, before any input"
            else:
                what = f"reads the call's own values ({', '.join(sorted(uses))}) for its shape or init (other than the input's width, x.shape[-1]); NNX creates variables in __init__"
            self.block(node, f"{api}({value!r}) {what}: not supported by the nnx target yet")
            return
        if read:
            self.input_params[id(node)] = input_param  # type: ignore[assignment]
            unit.needs_input |= INPUT in read
            unit.needs_dtype |= IN_DTYPE in read
        existing = variables.get(value)
        if existing is not None and existing.kind == kind:
            self.submodules[id(node)] = existing  # Haiku returns the same variable for the same name
            return
        attribute = unique_name(value, taken)
        taken.add(attribute)
        submodule = Submodule(node, attribute, kind, api, hoisted=True)
        variables[value] = submodule
        self._add(unit, submodule)
        self.uses_state |= kind == "state"

    def _state_write(self, unit: Unit, node: cst.Call, variables: dict[str, Submodule]) -> None:
        bound = bind_arguments(node, ("name", "value"))
        name = bound.get("name") if bound else None
        value = name.value.evaluated_value if name is not None and isinstance(name.value, cst.SimpleString) else None
        statement = self.analysis.parents.get(self.analysis.parents.get(node))
        if not (
            isinstance(statement, cst.SimpleStatementLine)
            and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr)
        ):
            self.block(node, "hk.set_state used as a value, not as a statement: not supported by the nnx target yet")
            return
        state = variables.get(value) if isinstance(value, str) else None
        if state is None or state.kind != "state" or bound is None or "value" not in bound:
            self.block(
                node,
                "hk.set_state of a name this module never reads with hk.get_state: not supported by the nnx target yet",
            )
            return
        self.state_writes[id(statement)] = state
        self.uses_state = True

    def _input_param(self, unit: Unit, method: cst.FunctionDef, before: cst.BaseStatement | None = None) -> str | None:
        """The parameter of ``__call__`` (or of a transformed function) that is the module's input, if it is
        never reassigned (so ``x.shape[-1]`` in the body is the input's width) — or, given a statement of the
        method's body ``before``, not reassigned by the statements ahead of it."""
        if unit.info is not None and method.name.value != "__call__":
            return None
        params = [p.name.value for p in method.params.params][1 if unit.info is not None else 0 :]
        if not params:
            return None
        if before is not None:
            statements = list(method.body.body)
            ahead = statements[: next(i for i, statement in enumerate(statements) if statement is before)]
            return params[0] if not any(params[0] in assigned_names(statement) for statement in ahead) else None
        assigned = {
            n.value
            for node in self.analysis.subtree(method.body)
            if isinstance(node, (cst.AssignTarget, cst.AugAssign, cst.AnnAssign))
            for n in self.analysis.subtree(node.target)
            if isinstance(n, cst.Name)
        }
        return params[0] if params[0] not in assigned else None

    def _is_dropout_key(self, node: cst.Call) -> bool:
        holder = self.analysis.parents.get(self.analysis.parents.get(node))
        return isinstance(holder, cst.Call) and self.analysis.haiku_name(holder.func) == "haiku.dropout"

    def _in_stack(self, node: cst.CSTNode) -> bool:
        current = self.analysis.parents.get(node)
        while current is not None and not isinstance(current, cst.BaseStatement):
            if isinstance(current, cst.Call) and self.analysis.is_haiku_layer_call(current) in STACKS:
                return True
            current = self.analysis.parents.get(current)
        return False

    def _argument_keywords(self, args: list[cst.Arg] | tuple[cst.Arg, ...]) -> set[str]:
        return {arg.keyword.value for arg in args if arg.keyword is not None}

    def _add(self, unit: Unit, submodule: Submodule) -> None:
        unit.submodules.append(submodule)
        self.submodules[id(submodule.call)] = submodule
        if submodule.kind == "local" and submodule.api not in self.classes:
            self.block(submodule.call, f"{submodule.api} is not migrated by the nnx target")

    def _constructs(self, node: cst.Call) -> bool:
        return self.analysis.constructs_module(node)

    def _kind(self, node: cst.Call) -> tuple[str, str]:
        layer = self.analysis.is_haiku_layer_call(node)
        if layer is not None:
            return "layer", layer
        return "local", node.func.value  # type: ignore[attr-defined]

    def _haiku_name(self, node: cst.Call, taken: set[str], loop_targets: set[str] = frozenset()) -> str:  # type: ignore[assignment]
        """The name Haiku gives the module ``node`` builds: ``name=`` or the snake-cased class, made unique.
        In a loop, ``name=f"layer_{i}"`` (``i`` a loop variable) names the list ``layer`` (items ``layer/0``…)."""
        layer = self.analysis.is_haiku_layer_call(node)
        base = haiku_module_name((layer or "").rsplit(".", 1)[-1] if layer else node.func.value)  # type: ignore[attr-defined]
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value == "name" and isinstance(arg.value, cst.SimpleString):
                value = arg.value.evaluated_value
                if isinstance(value, str) and value.isidentifier():
                    base = value
            elif (
                arg.keyword is not None
                and arg.keyword.value == "name"
                and m.matches(
                    arg.value, m.FormattedString([m.FormattedStringText(), m.FormattedStringExpression(m.Name())])
                )
            ):
                text, index = arg.value.parts  # type: ignore[attr-defined]
                if (
                    text.value.endswith("_")
                    and text.value[:-1].isidentifier()
                    and index.expression.value in loop_targets
                ):
                    base = text.value[:-1]
        return unique_name(base, taken)

    # ----- widths --------------------------------------------------------------------------------------

    def _widths(self, unit: Unit, methods: list[cst.FunctionDef]) -> None:
        called = self._called_methods(unit, list(unit.methods.values()) if unit.base is not None else methods)
        for method in methods:
            is_call = unit.info is None or method.name.value == "__call__"
            external = method.name.value in unit.external
            if method.name.value in called and not is_call and not external:
                continue  # followed from the calls, with the widths they pass
            returned, dtype = self._flow(unit, method, INPUT if is_call or external else None, ())
            if _names_of(returned) & (self._carry_variables(unit) | unit.lifted_names):
                returned = None  # only __init__ has those names
            if is_call:
                unit.output, unit.output_dtype = returned, dtype
            elif external:
                unit.method_outputs[method.name.value] = returned
        self._read_widths(unit)
        for submodule in unit.submodules:
            if submodule.kind == "dropout" or not self._takes_width(submodule):
                continue
            widths = set(submodule.given)
            if len(widths) != 1 or None in widths or not all(isinstance(width, str) for width in widths):
                what = (
                    f"is unknown: the layer is {_NOT_FOLLOWED}"
                    if not widths
                    else "is called with inputs whose widths h2f cannot prove equal"
                    if len(widths) > 1
                    else "is given an input whose width h2f cannot follow (a reshape, an unknown function)"
                )
                self.block_eager(
                    unit,
                    submodule.call,
                    f"the input width of {submodule.api} ({submodule.attribute}) {what}",
                    width=True,
                )
                continue
            submodule.in_width = widths.pop()
            if submodule.api in STACKS and self._reshapes_blindly(submodule.call, submodule.in_width):
                self.block_eager(
                    unit,
                    submodule.call,
                    f"the input width of the layers after hk.Flatten/hk.Reshape in {submodule.api} ({submodule.attribute}) is unknown (it reshapes a value other than the model's input)",
                    width=True,
                )
        defined: set[str] = set()
        seen: set[int] = set()
        for submodule in unit.submodules:
            loop = submodule.loop
            if loop is not None and id(loop) not in seen:
                seen.add(id(loop))
                for _, entry, after in loop.widths.carries:
                    names = _names_of(entry) | _names_of(after)
                    unit.needs_input |= INPUT in names
                    unit.needs_size |= FLAT in names
                defined |= {variable for variable, _, _ in loop.widths.carries}
            names = _names_of(submodule.in_width)
            if submodule in unit.inherited:
                continue  # the base class builds it
            unit.needs_input |= INPUT in names
            unit.needs_size |= FLAT in names
            early = names & (self._carry_variables(unit) - defined)
            if early:
                self.block_eager(
                    unit,
                    submodule.call,
                    f"the input width of {submodule.api} ({submodule.attribute}) comes from a loop __init__ builds later",
                )
        if unit.base is not None:
            unit.needs_input |= unit.base.needs_input
            for submodule in unit.inherited:
                if self._takes_width(submodule) and len(set(submodule.given)) > 1:
                    self.block_eager(
                        unit,
                        submodule.call,
                        f"the input width of {submodule.api} ({submodule.attribute}) differs from the one {unit.base.name} gives it",
                    )
        for submodule in unit.submodules:
            if submodule.kind == "local" and self.classes[submodule.api].needs_size:
                self.block_eager(
                    unit, submodule.call, f"{submodule.api} flattens its input, whose size is only known at the top"
                )
            if (
                submodule.kind == "local"
                and self.classes[submodule.api].needs_dtype
                and submodule not in unit.inherited
            ):
                self._input_dtype(unit, submodule)

    def _read_widths(self, unit: Unit) -> None:
        """Each ``NAME.shape[-1]`` a construction of the unit reads becomes the width the flow found for ``NAME``
        there, when that is one width ``__init__`` can compute; otherwise the file is refused."""
        carried = self._carry_variables(unit)
        for submodule in unit.submodules:
            reads = self.width_reads.get(id(submodule.call))
            if reads is None or submodule in unit.inherited:
                continue
            known = {name: widths[0] for name, widths in reads.items() if len(set(widths)) == 1}
            unknown = {
                name for name in reads if not isinstance(known.get(name), str) or _names_of(known[name]) & carried
            }
            if unknown:
                self.block(submodule.call, _own_arguments(self._read_sites[id(submodule.call)], unknown))
                continue
            self.read_widths[id(submodule.call)] = known  # type: ignore[assignment]
            unit.needs_input |= any(INPUT in _names_of(width) for width in known.values())

    def _input_dtype(self, unit: Unit, submodule: Submodule) -> None:
        """The dtype of what ``submodule`` (a class that creates variables with its input's dtype) is given: the
        unit's own input's, through operations that keep any dtype (:meth:`h2f.shapes.WidthFlow.dtype`)."""
        dtypes = set(submodule.given_dtypes)
        if len(dtypes) != 1 or None in dtypes:
            what = (
                f"is {_NOT_FOLLOWED}"
                if not dtypes
                else "is given inputs whose dtypes h2f cannot prove equal"
                if len(dtypes) > 1
                else (
                    "is given a value whose dtype h2f cannot prove to be the dtype of this module's input "
                    "(only hk.Linear/hk.Conv, jax.nn.relu, jnp.abs/negative/sign/square and +, -, *, @ keep any dtype)"
                )
            )
            self.block(
                submodule.call,
                f"{unit.name}: {submodule.api} ({submodule.attribute}) creates variables with its input's dtype, and {what}: not supported by the nnx target yet",
            )
            return
        submodule.in_dtype = dtypes.pop()
        unit.needs_dtype |= submodule.in_dtype == IN_DTYPE

    def _flow(self, unit: Unit, method: cst.FunctionDef, given: Width, stack: tuple[str, ...]) -> tuple[Width, Dtype]:
        """Follow the widths through ``method`` given the width of its first parameter: the width and dtype of what
        it returns. The dtype is followed from the module's input only (not through calls of its other methods)."""
        local = self.analysis.local_names(method) - {"self"}
        params = [p.name.value for p in method.params.params][1 if unit.info is not None else 0 :]
        flow = WidthFlow(
            lambda node: self._qualified(unit, node),
            lambda callee: self._module_use(unit, method, callee),
            lambda node: _valid_in_init(node, local),
            lambda call, widths: self._method_call(unit, call, widths, (*stack, method.name.value)),
            lambda node: self.loops[id(node)].widths if id(node) in self.loops else None,
            self.width_reads,
        )
        if unit.name in self.cells and unit.info is not None and method.name.value == "__call__":
            params = self._scan_step(flow, method, params)
        input_param = params[0] if params and given is not None else None
        is_call = unit.info is None or method.name.value == "__call__"
        returned = flow.run(
            method,
            input_param,
            given if given is not None else INPUT,
            IN_DTYPE if is_call and given == INPUT and not stack else None,
        )
        return returned, flow.output_dtype

    def _qualified(self, unit: Unit, node: cst.CSTNode) -> set[str]:
        """Qualified names of ``node``; ``self._activation`` stands for the element-wise function its
        constructor parameter defaults to (``activation=jax.nn.relu``)."""
        names = self.analysis.qualified_names(node)
        init = unit.info.init if unit.info is not None else None
        if init is None or not m.matches(node, m.Attribute(m.Name("self"), m.Name())):
            return names
        parameter = unit.stored.get(node.attr.value)  # type: ignore[attr-defined]
        for param in [*init.params.params, *init.params.kwonly_params]:
            if param.name.value == parameter and param.default is not None:
                return set(names) | (self.analysis.qualified_names(param.default) & ELEMENTWISE)
        return names

    def _carry_variables(self, unit: Unit) -> set[str]:
        """The ``__init__`` variables that carry widths through the unit's loops."""
        return {
            variable
            for loop in self.loops.values()
            if loop.owner == unit.name
            for variable, _, _ in loop.widths.carries
        }

    def _method_call(self, unit: Unit, node: cst.Call, widths: list[Width], stack: tuple[str, ...]) -> object:
        """``self.encode(x)`` inside the module: follow ``encode`` with the width of ``x``."""
        if unit.base is not None and m.matches(node.func, m.Attribute(m.Call(m.Name("super"), []), m.Name())):
            name = node.func.attr.value  # type: ignore[attr-defined]
            method = unit.base.methods.get(name)  # super().__call__(x): the base's method, on this module
            if method is None or name == "__init__" or f"super.{name}" in stack:
                return NOT_A_METHOD
            given = widths[0] if widths and node.args[0].keyword is None else None
            return self._flow(unit, method, given, (*stack, f"super.{name}"))[0]
        if unit.info is None or not m.matches(node.func, m.Attribute(m.Name("self"), m.Name())):
            return NOT_A_METHOD
        name = node.func.attr.value  # type: ignore[attr-defined]
        method = unit.methods.get(name)
        if method is None or name == "__init__" or name in stack:
            return NOT_A_METHOD
        given = widths[0] if widths and node.args[0].keyword is None else None
        return self._flow(unit, method, given, stack)[0]

    def _called_methods(self, unit: Unit, methods: list[cst.FunctionDef]) -> set[str]:
        if unit.info is None:
            return set()
        return {
            node.func.attr.value  # type: ignore[attr-defined]
            for method in methods
            for node in self.analysis.subtree(method.body)
            if isinstance(node, cst.Call) and m.matches(node.func, m.Attribute(m.Name("self"), m.Name()))
        }

    def _takes_width(self, submodule: Submodule) -> bool:
        if submodule.kind in ("param", "state"):
            return False
        if submodule.kind == "layer":
            return NNX_LAYERS[submodule.api].width_argument is not None
        return self.classes[submodule.api].needs_input

    def _module_use(self, unit: Unit, method: cst.FunctionDef, callee: cst.BaseExpression) -> ModuleUse | None:
        scan = self.scans.get(id(self.analysis.parents.get(callee)))
        if scan is not None and scan.call.func is callee:  # hk.scan(cell, carry, xs): the cell is given xs
            use = self._module_use(unit, method, scan.cell)
            return dataclasses.replace(use, argument=2) if use is not None else None
        stacked = self._stacked_use(callee)
        if stacked is not None:
            return stacked
        called_method = None
        if isinstance(callee, cst.Attribute) and not m.matches(callee.value, m.Name("self")):
            called_method, callee = callee.attr.value, callee.value  # ``net.encode(x)``: a method of a submodule
        construction = self.analysis.constructor_of(callee) if not isinstance(callee, cst.Call) else callee
        if construction is None and m.matches(callee, m.Attribute(m.Name("self"), m.Name())):
            built = [s.call for s in unit.submodules if not s.hoisted and s.attribute == callee.attr.value]  # type: ignore[attr-defined]
            construction = built[0] if len(built) == 1 else None
        if construction is None:
            return None
        reshaping = self.reshaping(construction)
        if reshaping is not None:  # ``hk.Flatten()(x)``, ``self.flatten(x)``: no submodule, only a width after it
            return ModuleUse(
                lambda given: reshaping.width(given == FLAT), lambda given: None, flattens=reshaping.flattens_examples
            )
        submodule = self.submodules.get(id(construction))
        if submodule is None or (submodule not in unit.submodules and submodule not in unit.inherited):
            return None
        if called_method is not None and (
            submodule.kind != "local" or called_method not in self.classes[submodule.api].external
        ):
            return None
        if called_method is not None and submodule.api in self.cells:  # cell.initial_state(batch): not the step's input
            return ModuleUse(lambda given: None, lambda given: None)
        local = self.analysis.local_names(method) - {"self"}
        input_param = self.input_params.get(id(construction))

        if submodule.loop is not None:
            local = local - submodule.loop.targets  # the loop in __init__ binds them too
        local = local - unit.lifted_names  # __init__ computes them too

        reads = self.width_reads.get(id(construction), {})

        def argument_width(node: cst.BaseExpression) -> Width:
            if input_param is not None:
                node = input_width_of(node, input_param)  # type: ignore[assignment]
            seen = {name: widths[-1] for name, widths in reads.items() if widths and isinstance(widths[-1], str)}
            node = with_widths(node, seen)  # type: ignore[assignment]  # the widths where the walk is now
            return code_of(node) if _valid_in_init(node, local) else None

        def output(given: Width) -> Width:
            if submodule.api in STACKS:
                return self._stack_output(submodule.call, given, argument_width)
            if submodule.kind == "layer":
                return output_width(submodule.api, submodule.call, given, argument_width)
            child = self.classes[submodule.api]
            returned = child.output if called_method is None else child.method_outputs.get(called_method)
            bindings: dict[str, Width] = {INPUT: given}
            bound = bind_arguments(submodule.call, child.constructor_params + ["name"]) or {}
            for attribute, parameter in child.stored.items():
                if parameter in bound:
                    bindings[f"self.{attribute}"] = argument_width(bound[parameter].value)
            defaults = child.constructor_defaults
            for parameter in child.constructor_params:  # a width read in __init__ from the parameter itself
                if parameter in (INPUT, FLAT, IN_DTYPE):
                    continue
                if parameter in bound:
                    bindings[parameter] = argument_width(bound[parameter].value)
                else:
                    default = defaults.get(parameter)
                    bindings[parameter] = code_of(default) if isinstance(default, cst.Integer) else None
            return substitute(returned, bindings)

        def output_dtype(given: Dtype) -> Dtype:
            if submodule.kind == "layer":
                return given if submodule.api in SAME_DTYPE_LAYERS else None
            child = self.classes[submodule.api]
            return given if called_method is None and child.output_dtype == IN_DTYPE else None

        return ModuleUse(
            output,
            submodule.given.append,
            output_dtype=output_dtype,
            record_dtype=submodule.given_dtypes.append,
            flattens=submodule.api in STACKS and self._flattens_first(submodule.call),
        )

    def _scan_call(self, node: cst.CSTNode) -> bool:
        """Whether ``node`` (``hk.scan``) scans a module the nnx target runs with ``nnx.scan`` (then noted);
        otherwise the reason is reported."""
        from h2f.rules.nnx_scan import scan_site

        site = scan_site(self.analysis, node)
        if isinstance(site, str):
            self.block(node, f"{site}: not supported by the nnx target yet")
        else:
            self.scans[id(site.call)] = site
            self.cells.add(site.class_name)
        return True

    def _check_cells(self) -> None:
        """A scanned module is broadcast to every step: it must draw no random numbers and keep no state."""
        for site in self.scans.values():
            cell = self.classes.get(site.class_name)
            if cell is not None and (cell.uses_rng or any(s.kind == "state" for s in cell.submodules)):
                self.block(
                    site.call,
                    f"hk.scan of {cell.name}, which draws random numbers or keeps hk.get_state values: not supported by the nnx target yet",
                )

    def _scan_step(self, flow: WidthFlow, method: cst.FunctionDef, params: list[str]) -> list[str]:
        """``__call__(carry, x)`` of a module hk.scan runs: ``x``, one step of the scanned input, is the module's
        input, and the carry is as wide as the carry the step returns (``lax.scan`` requires it), found by a first
        walk that records nothing. Returns the parameters left, the input first."""
        first = copy.deepcopy(flow)
        with trial():
            returned = first.run(method, params[1], INPUT)
        flow.env[params[0]] = returned[0] if isinstance(returned, tuple) and len(returned) == 2 else None
        return params[1:]

    def _moves_to_init(self, unit: Unit, method: cst.FunctionDef, count: cst.BaseExpression) -> bool:
        """Whether the layer-stack count ``count`` is a parameter (with a default, after the input) of a transformed
        function that reads it only as layer-stack counts: the constructor then takes it (noted in
        :attr:`Unit.moved_params`; its init and apply calls must leave it out, see :meth:`_check_moved_params`)."""
        if unit.info is not None or not isinstance(count, cst.Name):
            return False
        param = next((p for p in method.params.params[1:] if p.name.value == count.value), None)
        if param is None or param.default is None:
            return False
        for node in self.analysis.subtree(method.body):
            holder = self.analysis.parents.get(self.analysis.parents.get(node))  # Name → Arg → Call
            if (
                isinstance(node, cst.Name)
                and node.value == count.value
                and not (isinstance(holder, cst.Call) and self.analysis.haiku_name(holder.func) == "haiku.layer_stack")
            ):
                return False
        if all(p is not param for p in unit.moved_params):
            unit.moved_params.append(param)
        return True

    def _check_moved_params(self) -> None:
        """Init and apply calls must not pass a layer count the constructor takes (:attr:`Unit.moved_params`):
        Haiku builds that many layers at init; NNX builds them once, with the count's default."""
        for plan in self.transforms:
            moved = plan.unit.moved_params if plan.unit is not None and plan.init_call is not None else []
            names = [p.name.value for p in plan.unit.node.params.params] if moved else []  # type: ignore[union-attr]
            for param in moved:
                for site, leading in [
                    (plan.init_call, 1),
                    *((apply, plan.leading_arguments) for apply in plan.applies),
                ]:
                    positional = [arg for arg in site.args if arg.keyword is None]  # type: ignore[union-attr]
                    if len(positional) > leading + names.index(param.name.value) or any(
                        arg.star or (arg.keyword is not None and arg.keyword.value == param.name.value)
                        for arg in site.args
                    ):  # type: ignore[union-attr]
                        self.block(
                            site,
                            f"{plan.name}: {param.name.value} (a layer_stack count) passed to init or apply; NNX builds the layers once, in __init__, with its default: not supported by the nnx target yet",
                        )  # type: ignore[arg-type]

    def _stack_site_of(self, node: cst.Call, method: cst.FunctionDef) -> StackSite | None:
        """The layer stack whose module ``node`` constructs, if it is one (see :func:`rules.nnx_layer_stack.stack_site`)."""
        from h2f.rules.nnx_layer_stack import StackSite, stack_site

        function = self.analysis.enclosing(node, cst.FunctionDef)
        if function is None or function is method or self.analysis.enclosing(function, cst.FunctionDef) is not method:
            return None
        site = stack_site(self.analysis, function, method)  # type: ignore[arg-type]
        return site if isinstance(site, StackSite) and site.construction is node else None

    def _layer_stack_decorator(self, node: cst.CSTNode) -> bool:
        """Whether ``node`` (``hk.layer_stack``) stacks a nested function of a module method that the nnx target
        translates (as its decorator, or ``hk.layer_stack(n)(f)(x)``); otherwise the reason is reported."""
        from h2f.rules.nnx_layer_stack import StackSite, stack_site, stacked_callee, stacked_function

        decorator = self.analysis.enclosing(node, cst.Decorator)
        function = self.analysis.parents.get(decorator) if decorator is not None else None
        stacker = self.analysis.parents.get(self.analysis.parents.get(node))  # hk.layer_stack(n)(f)
        if (
            decorator is None
            and isinstance(stacker, cst.Call)
            and stacked_callee(self.analysis, stacker) is not stacker
        ):
            function = stacked_function(self.analysis, stacked_callee(self.analysis, stacker))
        method = self.analysis.enclosing(function, cst.FunctionDef) if isinstance(function, cst.FunctionDef) else None
        if method is None or self.analysis.module_scope(function) is not method:  # type: ignore[arg-type]
            self.block(
                node,
                "hk.layer_stack other than stacking a function nested in a module method (its decorator, or `hk.layer_stack(n)(f)(x)`): not supported by the nnx target yet",
            )
            return True
        site = stack_site(self.analysis, function, method)  # type: ignore[arg-type]
        if not isinstance(site, StackSite):
            self.block(node, f"{site}: not supported by the nnx target yet")
        return True

    def _stacked_use(self, callee: cst.BaseExpression) -> ModuleUse | None:
        """The call of a layer stack's function, ``stack(x)``: the stacked module's input; the output is as wide
        (the carry of a scan). The construction inside the function is not followed (only its calls give widths)."""
        if (
            isinstance(callee, cst.Call)
            and id(callee) in self.submodules
            and self.submodules[id(callee)].stack is not None
        ):
            return ModuleUse(lambda given: given, lambda given: None)
        from h2f.rules.nnx_layer_stack import stacked_callee, stacked_function

        node = stacked_function(self.analysis, stacked_callee(self.analysis, callee))
        submodule = self._stacked_uses.get(id(node.name)) if node is not None else None
        if submodule is None:
            return None
        # the carry of a scan keeps its dtype from one layer to the next
        return ModuleUse(
            lambda given: given,
            submodule.given.append,
            output_dtype=lambda given: given,
            record_dtype=submodule.given_dtypes.append,
        )

    def _stack_output(
        self, stack: cst.Call, given: Width, argument_width: Callable[[cst.BaseExpression], Width]
    ) -> Width:
        """The output width of an ``hk.Sequential``/``hk.nets.MLP`` given ``given``: layer by layer."""
        if self.analysis.haiku_name(stack.func) == "haiku.nets.MLP":
            bound = bind_arguments(stack, ("output_sizes", "w_init", "b_init", "with_bias", "activation")) or {}
            sizes = bound.get("output_sizes")
            activation = bound.get("activation")
            if sizes is None or not isinstance(sizes.value, (cst.List, cst.Tuple)) or not sizes.value.elements:
                return None
            if activation is not None and not self.analysis.qualified_names(activation.value) & ELEMENTWISE:
                return None
            return argument_width(sizes.value.elements[-1].value)
        layers = stack.args[0].value if stack.args else None
        if not isinstance(layers, (cst.List, cst.Tuple)):
            return None
        width = given
        for element in layers.elements:
            item = element.value
            layer = self.analysis.is_haiku_layer_call(item)
            reshaping = self.reshaping(item)
            if layer in NNX_LAYERS and layer not in STACKS:
                width = output_width(layer, item, width, argument_width)  # type: ignore[arg-type]
            elif reshaping is not None:
                width = reshaping.width(width == FLAT)
            elif not self.analysis.qualified_names(item) & ELEMENTWISE:
                return None
        return width

    def reshaping(self, item: cst.BaseExpression) -> Reshaping | None:
        """What the item ``item`` of an ``hk.Sequential`` computes if it is an ``hk.Flatten``/``hk.Reshape``."""
        if not isinstance(item, cst.Call):
            return None
        reshaping = reshaping_of(self.analysis.haiku_name(item.func), item)
        return reshaping if isinstance(reshaping, Reshaping) else None

    def stack_items(self, stack: cst.Call) -> list[cst.BaseExpression]:
        """The items of the list an ``hk.Sequential`` is built from (none for ``hk.nets.MLP``)."""
        layers = (
            stack.args[0].value if stack.args and self.analysis.haiku_name(stack.func) == "haiku.Sequential" else None
        )
        return [element.value for element in layers.elements] if isinstance(layers, (cst.List, cst.Tuple)) else []

    def _flattens_first(self, stack: cst.Call) -> bool:
        """Whether the ``hk.Sequential`` ``stack`` flattens each example (``hk.Flatten()``) before any layer."""
        for item in self.stack_items(stack):
            reshaping = self.reshaping(item)
            if reshaping is not None:
                return reshaping.flattens_examples
            if not self.analysis.qualified_names(item) & ELEMENTWISE:
                return False
        return False

    def _reshapes_blindly(self, stack: cst.Call, given: Width) -> bool:
        """Whether an ``hk.Flatten``/``hk.Reshape`` in the ``hk.Sequential`` ``stack`` (given ``given``) hides the
        input width of the layers after it."""
        width = given
        for item in self.stack_items(stack):
            reshaping = self.reshaping(item)
            layer = self.analysis.is_haiku_layer_call(item)
            if reshaping is not None:
                width = reshaping.width(width == FLAT)
            elif layer in NNX_LAYERS and NNX_LAYERS[layer].width_argument is not None and width is None:
                return True
            elif layer in NNX_LAYERS:
                width = output_width(layer, item, width, code_of)  # type: ignore[arg-type]
        return False

    # ----- transforms ----------------------------------------------------------------------------------

    def _plan_transform(self, transform: Transform) -> None:
        from h2f.rules.transform import direct_construction

        function = transform.function
        where = transform.binding or function
        if where is None:
            return  # only typed (a factory's result, a parameter): the factory or the annotation is reported
        label = transform.name if not transform.name.startswith("<") else f"of {transform.function_name}"
        if (
            isinstance(function, cst.Lambda)
            and transform.kind == "transform"
            and isinstance(transform.binding, cst.Assign)
        ):
            construction = direct_construction(self.analysis, transform, function)
            if construction is not None and self._scope_body(transform.binding) is not None:
                plan = TransformPlan(transform, construction, None)
                self.top_level[id(construction)] = plan
                self.transforms.append(plan)
                self.bindings[id(transform.binding)] = plan
                return
        if transform.kind == "multi_transform" and not transform.with_state and isinstance(function, cst.FunctionDef):
            self._plan_multi_transform(transform, function, where, label)
            return
        if transform.kind != "transform" or not isinstance(function, cst.FunctionDef) or where is None:
            self.block(
                where or self.analysis.module,
                f"transform {label}: only hk.transform(_with_state) of a module-level def (or of a lambda that calls one module) is supported by the nnx target yet",
            )
            return
        factory = None
        if self._scope_body(transform.binding) is None:
            factory = self._factory_returning(transform)
            if factory is None:
                self.block(
                    where,
                    f"transform {label}: only transforms a module-level function returns (`return hk.transform(f)`) are supported by the nnx target yet",
                )
                return
        construction = direct_construction(self.analysis, transform, function)
        plan = TransformPlan(transform, construction, None)
        if factory is not None:
            self._factories[factory.name.value] = plan
            self.factory_returns[id(transform.binding)] = plan
        if construction is None:
            unit = Unit(self.analysis.generated_class_name(function), function, None)
            self.units[id(function)] = unit
            plan.unit = unit
        else:
            self.top_level[id(construction)] = plan
            self.removed_functions.add(id(function))
        if factory is None:
            self.transforms.append(plan)
        if isinstance(transform.binding, cst.Assign):
            self.bindings[id(transform.binding)] = plan

    def _factory_returning(self, transform: Transform) -> cst.FunctionDef | None:
        """The module-level function whose ``return`` statement is ``transform`` (an unbound ``hk.transform``
        or ``transform_with_state`` call), when it returns no other transform."""
        statement = self.analysis.parents.get(self.analysis.parents.get(transform.binding))  # Call → Return → line
        body = self.analysis.parents.get(statement)
        factory = self.analysis.parents.get(body)
        if (
            not isinstance(transform.binding, cst.Call)
            or not isinstance(self.analysis.parents.get(transform.binding), cst.Return)
            or not isinstance(body, cst.IndentedBlock)
            or not isinstance(factory, cst.FunctionDef)
            or self.analysis.parents.get(factory) is not self.analysis.module
            or factory.name.value in self._factories
        ):
            return None
        return factory

    def _plan_factory_results(self) -> None:
        """``a = make_model(4)`` for a factory that returns a transform: ``a`` holds the model's constructor, and
        the model is built where ``a.init`` was called."""
        for node in self.analysis.nodes:
            if not (
                isinstance(node, cst.Assign) and len(node.targets) == 1 and m.matches(node.value, m.Call(func=m.Name()))
            ):
                continue
            target = node.targets[0].target
            factory = self._factories.get(node.value.func.value)  # type: ignore[attr-defined]
            transform = self.analysis.transform_named(target) if isinstance(target, cst.Name) else None
            if factory is None or transform is None or transform.function is not None or transform.binding is not None:
                continue
            plan = TransformPlan(transform, factory.construction, factory.unit, declared=node, factory=factory)
            self.transforms.append(plan)
        declared = {id(plan.declared) for plan in self.transforms if plan.declared is not None}
        called = {node.value.func.value for node in self.analysis.nodes if id(node) in declared}  # type: ignore[attr-defined]
        for name, plan in self._factories.items():
            factory = self.analysis.enclosing(plan.transform.binding, cst.FunctionDef)  # type: ignore[arg-type]
            if name not in called and self.analysis.parents.get(factory) is self.analysis.module:  # type: ignore[arg-type]
                self.block(
                    factory,  # type: ignore[arg-type]
                    f"{name} returns a transform, and no `model = {name}(...)` of this file builds it (the nnx target "
                    "does not follow calls from other files yet): not supported by the nnx target yet",
                )
        for node in self.analysis.nodes:
            if not isinstance(node, cst.Name) or node.value not in self._factories:
                continue
            call = self.analysis.parents.get(node)
            if isinstance(call, cst.FunctionDef) or (
                isinstance(call, cst.Call) and call.func is node and id(self.analysis.parents.get(call)) in declared
            ):
                continue
            self.block(
                node,
                f"{node.value} (returns a transform) used other than as `model = {node.value}(...)`: not supported by the nnx target yet",
            )

    def _plan_multi_transform(
        self, transform: Transform, function: cst.FunctionDef, where: cst.CSTNode, label: str
    ) -> None:
        """``hk.multi_transform`` of a function that builds one module and returns its methods: the model is that
        module, and each unpacked apply function calls its method."""
        from h2f.rules.transform import multi_construction

        construction = multi_construction(self.analysis, transform, function)
        if (
            construction is None
            or self._scope_body(transform.binding) is None
            or not isinstance(transform.binding, cst.Assign)
        ):
            self.block(
                where,
                f"transform {label}: only hk.multi_transform of a module-level def that builds one module and returns its methods is supported by the nnx target yet",
            )
            return
        plan = TransformPlan(transform, construction, None)
        self.top_level[id(construction)] = plan
        self.removed_functions.add(id(function))
        self.transforms.append(plan)
        self.bindings[id(transform.binding)] = plan

    def _plan_apply_value(self, plan: TransformPlan, node: cst.Name, apply: cst.Attribute) -> None:
        """``model.apply`` other than called: unpacked into a multi_transform's methods, whose calls become method
        calls, or used as a value (``jax.jit(model.apply)``, ``apply_fn=model.apply``), which becomes the pure apply
        function with Haiku's signature."""
        transform = plan.transform
        owner = self.analysis.parents.get(apply)
        if transform.kind == "transform":
            plan.apply_values[id(apply)] = apply
            self.apply_values[id(apply)] = plan
            return
        target = owner.targets[0].target if isinstance(owner, cst.Assign) and len(owner.targets) == 1 else None
        statement = self.analysis.parents.get(owner)
        if not (
            isinstance(target, cst.Tuple)
            and owner.value is apply
            and isinstance(statement, cst.SimpleStatementLine)
            and len(statement.body) == 1
            and all(self.analysis.alias_of(element.value, "apply") is not None for element in target.elements)  # type: ignore[arg-type]
        ):
            self.block(
                node,
                f"{transform.name}.apply other than unpacked into its methods (`a, b = {transform.name}.apply`): not supported by the nnx target yet",
            )
            return
        for element in target.elements:
            _, method = self.analysis.alias_of(element.value, "apply")  # type: ignore[misc, arg-type]
            for reference in self._references(element.value):
                call = self.analysis.parents.get(reference)
                if not (isinstance(call, cst.Call) and call.func is reference):
                    self.block(
                        reference,
                        f"{element.value.value} (a method of {transform.name}.apply) used other than called: not supported by the nnx target yet",
                    )  # type: ignore[attr-defined]
                    continue
                plan.applies.append(call)
                plan.methods[id(call)] = method or "__call__"
                self.apply_calls[id(call)] = plan
        self.bindings[id(owner)] = plan

    def _scope_body(self, node: cst.CSTNode | None) -> cst.CSTNode | None:
        """The module, or the body of the function, whose statement ``node`` (an Assign or a def) is."""
        statement = self.analysis.parents.get(node) if isinstance(node, cst.Assign) else node
        body = self.analysis.parents.get(statement) if statement is not None else None
        if body is self.analysis.module:
            return body
        if isinstance(body, cst.IndentedBlock) and isinstance(self.analysis.parents.get(body), cst.FunctionDef):
            return body
        return None

    def _inside(self, node: cst.CSTNode, body: cst.CSTNode) -> bool:
        current: cst.CSTNode | None = node
        while current is not None and current is not body:
            current = self.analysis.parents.get(current)
        return current is body

    def _uses(self, plan: TransformPlan) -> list[cst.Name]:
        """The names that refer to the transform, other than where it is bound."""
        uses = []
        for node in self.analysis.nodes:
            if (
                not isinstance(node, cst.Name)
                or node.value != plan.name
                or self.analysis.transform_named(node) is not plan.transform
            ):
                continue
            parent = self.analysis.parents.get(node)
            if node is getattr(plan.binding, "name", None) or (
                isinstance(parent, cst.AssignTarget)
                and isinstance(plan.binding, cst.Assign)
                and parent in plan.binding.targets
            ):
                continue
            reached = self.analysis.binding_read(node)
            if type(reached) is cst.FunctionDef and reached is not plan.binding or isinstance(parent, cst.FunctionDef):
                continue  # the function the model is bound over (``forward = hk.transform(forward)``), not the model
            uses.append(node)
        return uses

    def _model_scope(self, plan: TransformPlan) -> cst.CSTNode | None:
        """Where the model is built: the body that binds the transform, or, for a module-level transform used only
        in one top-level function (``def main(): params = model.init(...)``), that function's body."""
        body = self._scope_body(plan.binding)
        if body is not self.analysis.module:
            return body
        functions = set()
        for use in self._uses(plan):
            current: cst.CSTNode | None = use
            while current is not None and not (
                isinstance(current, cst.FunctionDef) and self.analysis.parents.get(current) is self.analysis.module
            ):
                current = self.analysis.parents.get(current)
            functions.add(current)
        if len(functions) == 1 and None not in functions:
            return functions.pop().body  # type: ignore[union-attr]
        return body

    def _plan_call_sites(self, plan: TransformPlan) -> None:
        transform = plan.transform
        plan.scope = self._model_scope(plan)
        for node in self._uses(plan):
            parent = self.analysis.parents.get(node)
            scope = plan.scope
            if scope is not None and not self._inside(node, scope):
                self.block(
                    node,
                    f"{transform.name} is used outside the function that binds it: not supported by the nnx target yet",
                )
                continue
            owner = self.analysis.parents.get(parent) if isinstance(parent, cst.Attribute) else None
            jitted_init = (
                self._jitted_init(parent)
                if m.matches(parent, m.Attribute(value=m.Name(), attr=m.Name("init")))
                else None
            )
            if id(node) in self.helper_arguments:
                continue  # the helper receives the model's constructor the name holds
            if jitted_init is not None:
                self._plan_init(plan, jitted_init)  # jax.jit(model.init)(rng, x): the model is built there all the same
                continue
            if m.matches(parent, m.Attribute(value=m.Name(), attr=m.Name("apply"))) and not (
                isinstance(owner, cst.Call) and owner.func is parent
            ):
                self._plan_apply_value(plan, node, parent)  # type: ignore[arg-type]
                continue
            if not (
                isinstance(parent, cst.Attribute)
                and parent.value is node
                and isinstance(owner, cst.Call)
                and owner.func is parent
            ):
                self.block(
                    node,
                    f"{transform.name} is used other than by calling its init/apply: not supported by the nnx target yet",
                )
                continue
            if parent.attr.value == "init":  # type: ignore[union-attr]
                self._plan_init(plan, owner)
            elif parent.attr.value == "apply":  # type: ignore[union-attr]
                plan.applies.append(owner)
                self.apply_calls[id(owner)] = plan
            else:
                self.block(node, f"{transform.name}.{parent.attr.value} is not supported by the nnx target yet")  # type: ignore[union-attr]
        takes_sample = bool(plan.builder_params)
        if plan.init is None and plan.passed and not plan.applies and not plan.apply_values:
            return  # only passed to helpers: they build the model
        if plan.init is None:
            if not plan.init_refused:  # (a refused init said why already)
                self.block(
                    plan.binding or self.analysis.module,
                    f"transform {transform.name}: no `params = {transform.name}.init(...)` found next to it; the nnx "
                    "target builds the model there",
                )
            return
        if takes_sample and len(plan.init_call.args) < 2:  # type: ignore[union-attr]
            self.block(plan.init_call, f"{transform.name}.init: no sample input to take the model's input width from")  # type: ignore[arg-type]
            return
        if plan.passed:  # the name still holds the constructor the helpers receive
            taken = {node.value for node in self.analysis.nodes if isinstance(node, cst.Name)}
            plan.instance = unique_name(f"{transform.name}_model", taken)
        for apply in plan.applies:
            leading = apply.args[: plan.leading_arguments]
            if len(leading) < plan.leading_arguments or any(arg.keyword is not None or arg.star for arg in leading):
                self.block(
                    apply,
                    f"{transform.name}.apply call whose params/state/rng are not its first positional arguments: not supported by the nnx target yet",
                )
        if self.blocked:
            return
        for value in plan.apply_values.values():
            if self._runs_before(value, plan.init):  # type: ignore[arg-type]
                self.block(
                    value,
                    f"{transform.name}.apply used before `{transform.name}.init` (the nnx target defines its apply function there): not supported by the nnx target yet",
                )
        if plan.state is not None or plan.apply_values:
            plan.split = True  # the apply function is pure (it returns the new state, or stands for Haiku's apply)
            return
        if id(plan.init_call) in self.inline_inits:
            return  # split: the params exist only as the pytree the statement passes on
        params_declared = self._declaration(plan)
        for apply in plan.applies:
            first = apply.args[0].value
            if isinstance(first, cst.Name) and self._declared_by(first, params_declared):
                plan.direct.add(id(apply))
        if plan.uses_rng:  # see _check_bridge: a model drawing random numbers, called under jax.vmap, would too
            plan.direct -= self._deferred(plan)
        # The params of init are needed as a pytree when anything but a direct apply call reads them.
        for reference in self._references(params_declared):
            parent = self.analysis.parents.get(reference)
            holder = self.analysis.parents.get(parent) if isinstance(parent, cst.Arg) else None
            if not (isinstance(holder, cst.Call) and id(holder) in plan.direct and holder.args[0] is parent):
                plan.split = True
        if plan.methods and plan.split and plan.uses_rng:
            self.block(
                plan.init_call,
                f"{transform.name}: methods of a multi_transform called on other params, for a model that draws random numbers: not supported by the nnx target yet",
            )  # type: ignore[arg-type]

    def _runs_before(self, node: cst.CSTNode, statement: cst.SimpleStatementLine) -> bool:
        """Whether ``node`` is evaluated before ``statement`` runs: it is in an earlier statement of the same body
        (or in the same statement), not deferred inside a function, lambda or class."""
        body = self.analysis.parents.get(statement)
        current: cst.CSTNode | None = node
        while current is not None and self.analysis.parents.get(current) is not body:
            if isinstance(current, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
                return False
            current = self.analysis.parents.get(current)
        if current is None or isinstance(current, (cst.FunctionDef, cst.ClassDef)):
            return False
        statements = list(body.body)  # type: ignore[union-attr]
        return statements.index(current) <= statements.index(statement)

    def _jitted_init(self, init: cst.Attribute) -> cst.Call | None:
        """The call of ``jax.jit(model.init)`` (``init`` is ``model.init``): ``jax.jit(model.init)(rng, x)``."""
        arg = self.analysis.parents.get(init)
        jit = self.analysis.parents.get(arg)
        outer = self.analysis.parents.get(jit)
        if not (
            isinstance(arg, cst.Arg)
            and arg.keyword is None
            and not arg.star
            and isinstance(jit, cst.Call)
            and len(jit.args) == 1
            and isinstance(outer, cst.Call)
            and outer.func is jit
        ):
            return None
        return outer if "jax.jit" in self.analysis.qualified_names(jit.func) else None

    def _plan_construction(self, plan: TransformPlan) -> None:
        """What the model's construction needs (input width, flattened input size) and whether it draws random numbers."""
        if plan.construction is None:
            plan.uses_rng = plan.unit.uses_rng  # type: ignore[union-attr]
            return
        plan.construction_needs_input, plan.uses_rng = self._construction_input(plan.construction)
        if self.analysis.is_haiku_layer_call(plan.construction) in STACKS:
            if self._flattens_first(plan.construction):  # its first layer takes the size of a flattened example
                plan.construction_needs_input, plan.construction_needs_size = False, True
            if self._reshapes_blindly(plan.construction, FLAT if plan.construction_needs_size else INPUT):
                self.block(
                    plan.construction,
                    f"{plan.name}: the input width of the layers after hk.Flatten/hk.Reshape in the model's hk.Sequential is unknown (it reshapes a value other than the model's input): not supported by the nnx target yet",
                )
        if self.analysis.local_module_class(plan.construction.func) is not None:
            unit = self.classes[plan.construction.func.value]  # type: ignore[attr-defined]
            plan.construction_needs_size, plan.construction_needs_dtype = unit.needs_size, unit.needs_dtype

    def _construction_input(self, construction: cst.Call) -> tuple[bool, bool]:
        layer = self.analysis.is_haiku_layer_call(construction)
        if layer is not None:
            return NNX_LAYERS[layer].width_argument is not None, False
        unit = self.classes[construction.func.value]  # type: ignore[attr-defined]
        return unit.needs_input, unit.uses_rng

    def _plan_init(self, plan: TransformPlan, init: cst.Call) -> None:
        assign = self.analysis.parents.get(init)
        statement = self.analysis.parents.get(assign)
        inline = self._inline_init_statement(plan, init)
        if inline is not None:
            assign, statement = None, inline
        elif (
            plan.init is not None
            or not m.matches(
                assign,
                m.Assign(
                    [
                        m.AssignTarget(
                            m.Tuple([m.Element(m.Name()), m.Element(m.Name())])
                            if plan.transform.with_state
                            else m.Name()
                        )
                    ]
                ),
            )
            or not isinstance(statement, cst.SimpleStatementLine)
            or len(statement.body) != 1
            or self.analysis.parents.get(statement) is not plan.scope
        ):
            targets = "params, state" if plan.transform.with_state else "params"
            elsewhere = plan.init is None and self.analysis.parents.get(statement) is not plan.scope
            self.block(
                init,
                f"{plan.name}.init is not a statement of the body that binds the transform, or of the one function "
                "that uses it (it is inside a block, or one of several functions uses the transform): the nnx target "
                "builds the model there; not supported by the nnx target yet"
                if elsewhere and isinstance(statement, cst.SimpleStatementLine)
                else f"{plan.name}.init: only one `{targets} = {plan.name}.init(rng, ...)` statement, next to where "
                "the transform is bound, is supported by the nnx target yet",
            )
            plan.init_refused = True
            return
        bound = init_arguments(init)
        if init.args and init.args[0].star:
            bound = None
        if bound is None or "rng" not in bound:
            self.block(init, f"{plan.name}.init call h2f cannot read")
            return
        plan.init = statement
        plan.init_call = init
        target = assign.targets[0].target if assign is not None else None  # type: ignore[union-attr]
        if target is None:
            plan.params = f"{plan.name}_params"
            plan.split = True
            self.inline_inits[id(init)] = plan
        elif isinstance(target, cst.Tuple):
            plan.params, plan.state = (element.value.value for element in target.elements)  # type: ignore[attr-defined]
        else:
            plan.params = target.value  # type: ignore[attr-defined]
        self.init_statements[id(statement)] = plan

    def _inline_init_statement(self, plan: TransformPlan, init: cst.Call) -> cst.SimpleStatementLine | None:
        """The statement of the binding's scope that holds ``init`` inside an expression (``y = evaluate(model.init(
        key, x))``), run once: the model is built and split just before it, and ``init`` becomes its params."""
        if plan.init is not None or plan.transform.with_state:
            return None
        assign = self.analysis.parents.get(init)
        if isinstance(assign, cst.Assign) and assign.value is init:
            return None  # ``params = model.init(...)`` itself
        current = self.analysis.parents.get(init)
        while current is not None and not isinstance(current, cst.SimpleStatementLine):
            if isinstance(current, (cst.Lambda, cst.BaseComp, cst.BooleanOperation, cst.IfExp)):
                return None  # maybe run more than once, or not at all
            current = self.analysis.parents.get(current)
        if current is None or self.analysis.parents.get(current) is not plan.scope:
            return None
        return current  # type: ignore[return-value]

    def _deferred(self, plan: TransformPlan) -> set[int]:
        """The ids of ``plan``'s apply calls inside a function or lambda (perhaps traced by jax.vmap or jax.jit)."""
        deferred = (cst.FunctionDef, cst.Lambda)
        return {id(apply) for apply in plan.applies if self.analysis.enclosing(apply, deferred)}

    def _declaration(self, plan: TransformPlan) -> cst.CSTNode:
        return plan.init.body[0].targets[0].target  # type: ignore[union-attr]

    def _declared_by(self, name: cst.Name, declared: cst.CSTNode) -> bool:
        scope = self.analysis.scopes.get(name)
        if scope is None or name.value not in scope:
            return False
        assignments = list(scope[name.value])
        return len(assignments) == 1 and getattr(assignments[0], "node", None) is declared

    def _references(self, declared: cst.CSTNode) -> list[cst.CSTNode]:
        scope = self.analysis.scopes.get(declared)
        if scope is None:
            return []
        found = []
        for assignment in scope[declared.value]:  # type: ignore[attr-defined]
            if getattr(assignment, "node", None) is declared:
                found.extend(reference.node for reference in assignment.references)
        return found


def init_arguments(init: cst.Call) -> dict[str, cst.Arg] | None:
    """The arguments of a Haiku ``init`` call: ``rng``, then the model's inputs (the first is ``sample``)."""
    return bind_arguments(init, ("rng", "sample", *(f"input_{index}" for index in range(len(init.args)))))


def _dropout_rate(node: cst.Call) -> cst.BaseExpression | None:
    bound = bind_arguments(node, ("rng", "rate", "x", "broadcast_dims"))
    if bound is None or not {"rng", "rate", "x"} <= bound.keys():
        return None
    rate = bound["rate"].value
    if isinstance(rate, cst.IfExp):
        return rate.body if _is_zero(rate.orelse) else rate.orelse if _is_zero(rate.body) else rate
    return rate


def _is_zero(node: cst.BaseExpression) -> bool:
    return isinstance(node, (cst.Integer, cst.Float)) and float(node.value) == 0.0


def _field_names(node: cst.ClassDef) -> list[str]:
    """The names a class body annotates (``features: int``): a dataclass's fields, in order."""
    fields = [annotated_field(statement) for statement in node.body.body]
    return [field.target.value for field in fields if field is not None]  # type: ignore[attr-defined]


def _stored_parameters(init: cst.FunctionDef, params: list[str]) -> dict[str, str]:
    """``self.attr = param`` statements of ``__init__`` → {attr: param}."""
    stored = {}
    for statement in init.body.body:
        if m.matches(
            statement,
            m.SimpleStatementLine([m.Assign([m.AssignTarget(m.Attribute(m.Name("self"), m.Name()))], m.Name())]),
        ):
            assign = statement.body[0]  # type: ignore[attr-defined]
            if assign.value.value in params:
                stored[assign.targets[0].target.attr.value] = assign.value.value
    return stored


def _lineage(unit: Unit) -> list[Unit]:
    """``unit`` and its base classes, nearest first."""
    found = []
    current: Unit | None = unit
    while current is not None:
        found.append(current)
        current = current.base
    return found


def _names_read(nodes: Sequence[cst.CSTNode]) -> set[str]:
    """The names ``nodes`` read (not an attribute's name, ``hk.pad.causal``'s ``causal``, nor a keyword's)."""
    found: set[str] = set()
    for node in nodes:
        not_read: set[int] = set()
        for child in walk(node):  # parents come before their children
            if isinstance(child, cst.Attribute):
                not_read.add(id(child.attr))
            elif isinstance(child, cst.Arg) and child.keyword is not None:
                not_read.add(id(child.keyword))
            elif isinstance(child, cst.Name) and id(child) not in not_read:
                found.add(child.value)
    return found


def _own_arguments(where: str, names: set[str]) -> str:
    """The refusal of a construction that reads values of its method ``names`` that ``__init__`` cannot compute."""
    return f"{where} builds a submodule from its own arguments ({', '.join(sorted(names))}): not supported by the nnx target yet"


def _names_of(width: Width) -> set[str]:
    """The names a width expression reads."""
    if isinstance(width, tuple):
        return set().union(*(_names_of(part) for part in width))
    if not isinstance(width, str):
        return set()
    try:
        return {node.value for node in walk(expr(width)) if isinstance(node, cst.Name)}
    except cst.ParserSyntaxError:
        return set()


def _rebinds(body: cst.CSTNode, name: str) -> bool:
    """Whether ``name`` is bound below ``body`` other than by one plain assignment (augmented, in a loop…)."""
    count = 0
    for child in walk(body):
        if isinstance(child, (cst.AugAssign, cst.AnnAssign, cst.For, cst.NamedExpr)) and name in {
            n.value for n in walk(child.target) if isinstance(n, cst.Name)
        }:
            return True
        if isinstance(child, cst.AssignTarget) and name in {
            n.value for n in walk(child.target) if isinstance(n, cst.Name)
        }:
            count += 1
    return count != 1


def _valid_in_init(node: cst.BaseExpression, local: set[str]) -> bool:
    """Whether a width expression can move to ``__init__``: it reads no name local to the method."""
    skipped = {id(child.attr) for child in walk(node) if isinstance(child, cst.Attribute)}
    return not any(
        isinstance(child, cst.Name) and id(child) not in skipped and child.value in local for child in walk(node)
    )
