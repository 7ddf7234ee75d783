"""Feature widths, for the NNX target: NNX layers take their input width (``in_features``, ``num_features``)
at construction, where Haiku and Linen infer it from the first input.

:class:`WidthFlow` follows the data through one function body, statement by statement: a layer's output
width is its output size (``hk.Linear(self.hidden)`` → ``self.hidden``), element-wise functions, dropout and
normalisation keep the width, residual adds keep the width of either side, concatenations on the last axis
add the widths. Every submodule call records the width of what it is given. A width is source text that is
valid in the module's ``__init__``: ``self.<attribute>``, literals, module-level names, or
:data:`INPUT`, the width of the module's own input (a constructor parameter the parent passes down).
Where the width cannot be followed (a reshape, an unknown function), it is None: never guessed.

Dtypes are followed alongside (:meth:`WidthFlow.dtype`), for the variables Haiku creates with the input's dtype
(``dtype=x.dtype``): a value has :data:`IN_DTYPE`, the dtype of the module's input, only through operations that
keep any dtype (integer inputs included); anything else is None.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import libcst as cst
import libcst.matchers as m

from h2f.syntax import bind_arguments, code_of, expr, replace_matching
from h2f.traversal import TOKENS, children, fast_transform, walk

#: The constructor parameter that carries the width of a module's input.
INPUT = "in_features"
#: The constructor parameter that carries the dtype of a module's input (for the variables Haiku creates with
#: ``x.dtype``); at the top it is ``sample.dtype``.
IN_DTYPE = "in_dtype"
#: The constructor parameter that carries the size of one example of the input, flattened
#: (``x.reshape(x.shape[0], -1)`` of the input itself); at the top it is ``sample[0].size``.
FLAT = "in_size"

#: Haiku layers whose output width is one of their constructor arguments: (parameter, position).
OUTPUT_ARGUMENT: dict[str, tuple[str, int]] = {
    "haiku.Linear": ("output_size", 0),
    "haiku.Conv1D": ("output_channels", 0),
    "haiku.Conv2D": ("output_channels", 0),
    "haiku.Conv3D": ("output_channels", 0),
    "haiku.Conv1DTranspose": ("output_channels", 0),
    "haiku.Conv2DTranspose": ("output_channels", 0),
    "haiku.Conv3DTranspose": ("output_channels", 0),
    "haiku.Embed": ("embed_dim", 1),
}
#: Haiku layers whose output has the width of their input.
SAME_WIDTH_LAYERS = frozenset({"haiku.LayerNorm", "haiku.RMSNorm", "haiku.BatchNorm", "haiku.GroupNorm"})

#: Functions that act element-wise on their first argument (the width goes through).
ELEMENTWISE = frozenset(
    {
        f"jax.nn.{name}"
        for name in (
            "relu",
            "relu6",
            "gelu",
            "silu",
            "swish",
            "sigmoid",
            "tanh",
            "elu",
            "celu",
            "selu",
            "softplus",
            "leaky_relu",
            "hard_tanh",
            "log_sigmoid",
            "softmax",
            "log_softmax",
            "glu",
            "mish",
            "soft_sign",
            "sparse_plus",
            "standardize",
        )
    }
    - {"jax.nn.glu"}
    | {
        f"jax.numpy.{name}"
        for name in (
            "tanh",
            "exp",
            "log",
            "abs",
            "sin",
            "cos",
            "square",
            "sqrt",
            "negative",
            "sign",
            "clip",
            "maximum",
            "minimum",
            "where",
            "log1p",
            "expm1",
        )
    }
    | {"haiku.dropout"}
)

#: Haiku layers whose output has the dtype of their input, whatever it is (they create their parameters with it).
SAME_DTYPE_LAYERS = frozenset(
    {"haiku.Linear", *(f"haiku.Conv{rank}D{kind}" for rank in (1, 2, 3) for kind in ("", "Transpose"))}
)
#: Functions whose result has the dtype of their first argument, whatever it is (integers included).
SAME_DTYPE = frozenset({"jax.nn.relu", "jax.numpy.abs", "jax.numpy.negative", "jax.numpy.sign", "jax.numpy.square"})
#: Binary operators whose result has the dtype of two operands of one dtype (or of an array and a Python int).
SAME_DTYPE_OPERATORS = (cst.Add, cst.Subtract, cst.Multiply, cst.MatrixMultiply)

#: Functions that keep the width of their first argument (pooling windows and reductions over other axes):
#: the functions → the name of their axis parameter (None: pooling, whose channel axis is never pooled).
SAME_WIDTH_FUNCTIONS: dict[str, str | None] = {
    "haiku.max_pool": None,
    "haiku.avg_pool": None,
    **{f"jax.numpy.{name}": "axis" for name in ("mean", "sum", "max", "min", "prod", "var", "std")},
}
#: Array methods that reduce over ``axis`` (``x.mean(axis=1)``).
REDUCTION_METHODS = ("mean", "sum", "max", "min", "prod", "var", "std")
#: Pooling modules: ``hk.AvgPool(...)(x)`` keeps the width of ``x``.
SAME_WIDTH_MODULES = frozenset({"haiku.AvgPool", "haiku.MaxPool"})

#: The parameters of the Haiku modules that reshape (they have no parameters of their own).
RESHAPE_PARAMS = {
    "haiku.Flatten": ("preserve_dims", "name"),
    "haiku.Reshape": ("output_shape", "preserve_dims", "name"),
}

#: A width as source text, None when unknown, or a tuple of widths (a function returning several arrays).
Width = str | tuple | None
#: A dtype as source text valid in ``__init__`` (:data:`IN_DTYPE`: the module's input's), None when unknown.
Dtype = str | None

#: What ``method_call`` returns for a call that is not a method of the module.
NOT_A_METHOD = object()


@dataclasses.dataclass
class ModuleUse:
    """A submodule as seen from a function body: how to get its output width from its input width."""

    output: Callable[[Width], Width]
    record: Callable[[Width], None]
    #: The position of the call's argument the module is given (``hk.scan(cell, carry, xs)``: ``xs``, 2).
    argument: int = 0
    #: The dtype of the output given that of the input; what records the dtype of each input it is given.
    output_dtype: Callable[[Dtype], Dtype] = lambda given: None
    record_dtype: Callable[[Dtype], None] = lambda given: None
    #: Whether it first flattens each example (``hk.Flatten()``, an ``hk.Sequential`` starting with one): given a
    #: value with the whole shape of the input, it is given :data:`FLAT`.
    flattens: bool = False


@dataclasses.dataclass
class LoopWidths:
    """The widths of a ``for`` loop that builds submodules (``__init__`` repeats the loop to build them).

    A value whose width changes from one iteration to the next (``x = hk.Linear(width)(x)``) is carried in
    ``__init__`` by a local variable: ``carries`` lists (variable, width before the loop, width after one
    iteration in terms of the variable and the loop's targets). ``avoid``: names the variables must not take.
    """

    avoid: set[str]
    carries: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)


#: Submodule inputs recorded while a loop body is tried (see :meth:`WidthFlow._for`), innermost last; only
#: the final try of a loop body is recorded for real.
_TRIALS: list[list[tuple[ModuleUse, Width, Dtype]]] = []


def _record(use: ModuleUse, given: Width, dtype: Dtype) -> None:
    if _TRIALS:
        _TRIALS[-1].append((use, given, dtype))
    else:
        use.record(given)
        use.record_dtype(dtype)


@contextlib.contextmanager
def trial() -> Iterator[None]:
    """Inside, the submodule inputs a walk finds are dropped: a first walk whose results only seed the real one."""
    _TRIALS.append([])
    try:
        yield
    finally:
        _TRIALS.pop()


class WidthFlow:
    """The widths of the values in one function body, and of what each submodule call is given.

    ``module_of(callee)`` says whether an original callee expression is a submodule (and how wide its output
    is); ``valid(text)`` whether a width expression may move to ``__init__``.
    """

    def __init__(
        self,
        qualified: Callable[[cst.CSTNode], set[str]],
        module_of: Callable[[cst.BaseExpression], ModuleUse | None],
        valid: Callable[[cst.BaseExpression], bool],
        method_call: Callable[[cst.Call, list[Width]], object] | None = None,
        loop: Callable[[cst.For], LoopWidths | None] | None = None,
        reads: dict[int, dict[str, list[Width]]] | None = None,
    ) -> None:
        self.qualified = qualified
        #: Constructions (by id) that read ``NAME.shape[-1]`` → those names → the widths they had there, each time
        #: the walk reaches the construction (outside trials).
        self.reads = reads if reads is not None else {}
        self.method_call = method_call
        self.loop = loop
        self.module_of = module_of
        self.valid = valid
        self.env: dict[str, Width] = {}
        #: Names holding a value with the whole shape of the input (the input, scaled, activated…).
        self.whole: set[str] = set()
        #: Names → the dtype of their value, where it is known (see :meth:`dtype`).
        self.dtypes: dict[str, Dtype] = {}
        self.returned: list[Width] = []
        self.returned_dtypes: list[Dtype] = []

    def run(
        self, function: cst.FunctionDef, input_param: str | None, given: Width = INPUT, given_dtype: Dtype = None
    ) -> Width:
        """Walk ``function`` whose input ``input_param`` has the width ``given`` (and dtype ``given_dtype``); return
        the width of what it returns (None if unknown or not one width)."""
        if input_param is not None:
            self.env[input_param] = given
            self.dtypes[input_param] = given_dtype
            if given == INPUT:
                self.whole.add(input_param)
        self._block(function.body)
        widths = set(self.returned)
        return widths.pop() if len(widths) == 1 else None

    @property
    def output_dtype(self) -> Dtype:
        """The dtype of what the walked function returns, when every ``return`` gives the same known one."""
        dtypes = set(self.returned_dtypes)
        return dtypes.pop() if len(dtypes) == 1 else None

    def _block(self, block: cst.BaseSuite) -> None:
        for statement in getattr(block, "body", ()):
            self._statement(statement)

    def _statement(self, statement: cst.CSTNode) -> None:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign):
                    width = self.width(small.value)
                    for target in small.targets:
                        self._bind(target.target, width, small.value)
                elif isinstance(small, cst.AnnAssign) and small.value is not None:
                    self._bind(small.target, self.width(small.value), small.value)
                elif isinstance(small, cst.AugAssign):
                    before = self.width(small.target)
                    after = self.width(small.value)
                    self._bind(small.target, before if before is not None else None if after is None else after)
                elif isinstance(small, cst.Return) and small.value is not None:
                    self.returned.append(self.width(small.value))
                    self.returned_dtypes.append(self.dtype(small.value))
                elif isinstance(small, cst.Expr):
                    self.width(small.value)
            return
        widths = self.loop(statement) if isinstance(statement, cst.For) and self.loop is not None else None
        if widths is not None:
            self._for(statement, widths)  # type: ignore[arg-type]
            return
        if isinstance(statement, cst.BaseCompoundStatement):
            before = dict(self.env)
            self._compound(statement)
            for name, width in before.items():
                if self.env.get(name) != width:
                    self.env[name] = None  # bound differently on some path: no single width
            for name in assigned_names(statement):
                self.dtypes[name] = None  # maybe bound on some path only
            return
        for child in children(statement):
            if isinstance(child, cst.BaseExpression):
                self.width(child)

    def _for(self, node: cst.For, widths: LoopWidths) -> None:
        """A loop that builds submodules: try its body until the width of every value it rebinds is either the
        same in each iteration, carried by a variable of ``__init__`` (``widths.carries``), or unknown."""
        self.width(node.iter)
        targets = set(_names_in(node.target))
        assigned = assigned_names(node.body) - targets
        entry, whole, returned = dict(self.env), set(self.whole), len(self.returned)
        carried = sorted(name for name in assigned if isinstance(entry.get(name), str))
        bound: dict[str, Width] = {name: entry[name] for name in carried}
        variables: dict[str, str] = {}
        dropped: set[str] = set()  # unknown from one iteration to the next
        while True:
            self.env = {**entry, **bound, **{target: None for target in targets}}
            self.whole = whole - assigned - targets
            records: list[tuple[ModuleUse, Width, Dtype]] = []
            _TRIALS.append(records)
            try:
                self._block(node.body)
            finally:
                _TRIALS.pop()
            del self.returned[returned:]
            after = self.env
            changed = False
            for name in carried:
                exit_width = after.get(name)
                if (
                    name in dropped
                    or exit_width == bound[name]
                    or (name in variables and _carried(exit_width, variables[name], variables))
                ):
                    continue
                changed = True
                if name not in variables and isinstance(exit_width, str):
                    variables[name] = unique_name(f"{name}_features", widths.avoid | set(variables.values()))
                    bound[name] = variables[name]
                else:
                    variables.pop(name, None)
                    dropped.add(name)
                    bound[name] = None
            if not changed:
                break
        for use, given, dtype in records:
            _record(use, given, dtype)
        widths.carries = [(variables[name], entry[name], after[name]) for name in carried if name in variables]  # type: ignore[misc]
        self.dtypes.update((name, None) for name in assigned | targets)
        self.env = {**after, **{name: None for name in assigned | targets}, **bound}
        self.whole = whole - assigned - targets

    def _bind(self, target: cst.BaseExpression, width: Width, value: cst.BaseExpression | None = None) -> None:
        if (
            isinstance(target, (cst.Tuple, cst.List))
            and isinstance(width, tuple)
            and len(width) == len(target.elements)
        ):
            for element, part in zip(target.elements, width):
                self._bind(element.value, part)
            return
        if isinstance(target, cst.Name):
            self.env[target.value] = width
            self.dtypes[target.value] = self.dtype(value) if value is not None else None
            if value is not None and self._is_whole(value):
                self.whole.add(target.value)
            else:
                self.whole.discard(target.value)
        else:
            for node in _names_in(target):
                self.env[node] = None
                self.dtypes[node] = None

    def _is_whole(self, node: cst.BaseExpression) -> bool:
        """Whether ``node`` has the whole shape of the input (element-wise functions of it)."""
        if isinstance(node, cst.Name):
            return node.value in self.whole
        if isinstance(node, cst.BinaryOperation):
            sides = (node.left, node.right)
            return any(self._is_whole(side) for side in sides) and all(
                self._is_whole(side) or isinstance(side, (cst.Integer, cst.Float)) for side in sides
            )
        if isinstance(node, cst.UnaryOperation):
            return self._is_whole(node.expression)
        if isinstance(node, cst.Call) and self.qualified(node.func) & ELEMENTWISE - {"haiku.dropout"} and node.args:
            return self._is_whole(node.args[0].value)
        return False

    def _flattened(self, node: cst.Call) -> bool:
        """``v.reshape(v.shape[0], -1)`` / ``jnp.reshape(v, (v.shape[0], -1))`` of a value with the input's shape."""
        if "jax.numpy.reshape" in self.qualified(node.func) and len(node.args) == 2:
            value, shape = node.args[0].value, node.args[1].value
        elif m.matches(node.func, m.Attribute(attr=m.Name("reshape"))) and node.args:
            value = node.func.value  # type: ignore[attr-defined]
            shape = (
                node.args[0].value if len(node.args) == 1 else cst.Tuple([cst.Element(arg.value) for arg in node.args])
            )
        else:
            return False
        if not isinstance(shape, (cst.Tuple, cst.List)) or len(shape.elements) != 2 or not self._is_whole(value):
            return False
        first, second = (code_of(element.value) for element in shape.elements)
        return first == f"{code_of(value)}.shape[0]" and second == "-1"

    def _reshaped_last(self, node: cst.Call) -> Width:
        """``v.reshape(b, s, 16)`` / ``jnp.reshape(v, (b, s, self.heads))``: the last size, when it is given as a
        positive literal or an expression ``__init__`` can read."""
        if "jax.numpy.reshape" in self.qualified(node.func) and len(node.args) >= 2:
            shape = node.args[1].value
        elif m.matches(node.func, m.Attribute(attr=m.Name("reshape"))) and node.args:
            shape = (
                node.args[0].value if len(node.args) == 1 else cst.Tuple([cst.Element(arg.value) for arg in node.args])
            )
        else:
            return None
        if (
            not isinstance(shape, (cst.Tuple, cst.List))
            or len(shape.elements) < 2
            or isinstance(shape.elements[-1], cst.StarredElement)
        ):
            return None
        last = shape.elements[-1].value
        if isinstance(last, cst.Integer):
            return last.value if int(last.value) > 0 else None
        if isinstance(last, cst.UnaryOperation) or not self.valid(last):
            return None
        return code_of(last)

    def dtype(self, node: cst.BaseExpression) -> Dtype:
        """The dtype of the original expression ``node``, where it provably is one known in ``__init__`` (the
        input's, through operations that keep any dtype); None otherwise. Records nothing."""
        if isinstance(node, cst.Name):
            return self.dtypes.get(node.value)
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
            return self.dtype(node.expression)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, SAME_DTYPE_OPERATORS):
            left, right = (
                None if isinstance(side, cst.Integer) else self.dtype(side) for side in (node.left, node.right)
            )
            if isinstance(node.left, cst.Integer) or isinstance(node.right, cst.Integer):
                return left or right  # a Python int is weakly typed: the array's dtype wins
            return left if left == right else None
        if isinstance(node, cst.IfExp):
            body = self.dtype(node.body)
            return body if body == self.dtype(node.orelse) else None
        if not isinstance(node, cst.Call) or not node.args or node.args[0].keyword is not None:
            return None
        if self.qualified(node.func) & {"haiku.get_parameter", "haiku.get_state"}:  # dtype=x.dtype: x's
            dtype = (bind_arguments(node, ("name", "shape", "dtype", "init")) or {}).get("dtype")
            read = dtype.value if dtype is not None else None
            return self.dtype(read.value) if m.matches(read, m.Attribute(m.Name(), m.Name("dtype"))) else None  # type: ignore[union-attr]
        use = self.module_of(node.func)
        if use is not None:
            at = use.argument
            positional = len(node.args) > at and all(arg.keyword is None for arg in node.args[: at + 1])
            return use.output_dtype(self.dtype(node.args[at].value)) if positional else None
        return self.dtype(node.args[0].value) if self.qualified(node.func) & SAME_DTYPE else None

    def width(self, node: cst.BaseExpression) -> Width:
        """The width of the original expression ``node`` (recording the inputs of the submodules it calls)."""
        if isinstance(node, cst.Name):
            return self.env.get(node.value)
        if isinstance(node, cst.Call):
            return self._call(node)
        if isinstance(node, cst.BinaryOperation):
            left, right = self.width(node.left), self.width(node.right)
            if left is not None and right is not None and left != right:
                # A residual add: Haiku requires equal widths (or a broadcast 1, which the next layer's width
                # check then reports loudly): the residual stream's (the plain name's) stands for both.
                streams = [
                    width for side, width in ((node.left, left), (node.right, right)) if isinstance(side, cst.Name)
                ]
                return streams[0] if len(streams) == 1 else None
            return left if left is not None else right
        if isinstance(node, cst.UnaryOperation):
            return self.width(node.expression)
        if isinstance(node, cst.Tuple) and not any(isinstance(e, cst.StarredElement) for e in node.elements):
            return tuple(self.width(element.value) for element in node.elements)
        if isinstance(node, cst.IfExp):
            self.width(node.test)
            body, orelse = self.width(node.body), self.width(node.orelse)
            return body if body == orelse else None
        for child in children(node):
            if isinstance(child, cst.BaseExpression):
                self.width(child)
            elif isinstance(child, (cst.Arg, cst.Element, cst.SubscriptElement)):
                for grandchild in children(child):
                    if isinstance(grandchild, cst.BaseExpression):
                        self.width(grandchild)
        return None

    def _compound(self, node: cst.CSTNode) -> None:
        for child in children(node):
            if isinstance(child, cst.BaseSuite):
                self._block(child)
            elif isinstance(child, cst.BaseExpression):
                self.width(child)
            elif not isinstance(child, (cst.EmptyLine, cst.BaseParenthesizableWhitespace, cst.Comment)):
                self._compound(child)

    def _call(self, node: cst.Call) -> Width:
        widths = [self.width(arg.value) for arg in node.args]
        for construction in (node, node.func):
            reads = self.reads.get(id(construction))
            if reads is not None and not _TRIALS:
                for name, seen in reads.items():
                    seen.append(self.env.get(name))
        receiver = _computed_receiver(node.func)
        receiver_width = self.width(receiver) if receiver is not None else None  # ``hk.Linear(8)(x).reshape(...)``
        if self._flattened(node):
            return FLAT
        last = self._reshaped_last(node)
        if last is not None:
            return last
        use = self.module_of(node.func)
        if use is None and not isinstance(node.func, (cst.Name, cst.Attribute)):
            self.width(node.func)
        if use is not None:
            at = use.argument
            positional = len(widths) > at and all(arg.keyword is None for arg in node.args[: at + 1])
            given = widths[at] if positional else None
            if positional and use.flattens and self._is_whole(node.args[at].value):
                given = FLAT
            _record(use, given, self.dtype(node.args[at].value) if positional else None)
            return use.output(given)
        if self.method_call is not None:
            result = self.method_call(node, widths)
            if result is not NOT_A_METHOD:
                return result  # type: ignore[return-value]
        names = self.qualified(node.func)
        if names & ELEMENTWISE and node.args:
            index = 2 if "haiku.dropout" in names else 0
            bound = bind_arguments(node, ("rng", "rate", "x")) if index == 2 else None
            if bound is not None and "x" in bound:
                return self.width(bound["x"].value)
            return widths[index] if len(widths) > index else None
        if (
            names & {"jax.numpy.swapaxes", "jax.numpy.moveaxis"}
            and len(node.args) == 3
            and node.args[0].keyword is None
        ):
            axes = [integer_literal(arg.value) for arg in node.args[1:]]
            return widths[0] if all(axis is not None and axis != -1 for axis in axes) else None  # see _keeps_last_axis
        if names & {"jax.numpy.concatenate"} and node.args:
            return self._concatenate(node)
        same = names & SAME_WIDTH_FUNCTIONS.keys()
        if same and node.args and node.args[0].keyword is None:
            axis = SAME_WIDTH_FUNCTIONS[same.pop()]
            return widths[0] if axis is None or _keeps_last_axis(node, axis) else None
        if m.matches(node.func, m.Attribute(attr=m.OneOf(*(m.Name(n) for n in REDUCTION_METHODS)))):
            value = node.func.value  # type: ignore[attr-defined]
            reduced = node.with_changes(
                args=[cst.Arg(value), *node.args]
            )  # ``x.mean(axis=1)`` as ``jnp.mean(x, axis=1)``
            if not _keeps_last_axis(reduced, "axis"):
                return None
            return receiver_width if receiver is value else self.width(value)
        if isinstance(node.func, cst.Call) and self.qualified(node.func.func) & SAME_WIDTH_MODULES and node.args:
            return widths[0] if node.args[0].keyword is None else None
        return None

    def _concatenate(self, node: cst.Call) -> Width:
        bound = bind_arguments(node, ("arrays", "axis"))
        if bound is None or "axis" not in bound or code_of(bound["axis"].value) != "-1":
            return None
        arrays = bound["arrays"].value
        if not isinstance(arrays, (cst.List, cst.Tuple)):
            return None
        parts = [self.width(element.value) for element in arrays.elements]
        if any(part is None for part in parts):
            return None
        return " + ".join(part for part in parts if part is not None)


def _computed_receiver(callee: cst.BaseExpression) -> cst.BaseExpression | None:
    """The object a method is called on when it is computed (``hk.Linear(8)(x)`` in ``hk.Linear(8)(x).reshape``),
    not a name or a name's attribute (``x.reshape``, ``self.linear``, ``jnp.reshape``)."""
    if not isinstance(callee, cst.Attribute):
        return None
    base = callee.value
    while isinstance(base, cst.Attribute):
        base = base.value
    return None if isinstance(base, cst.Name) else callee.value


def _keeps_last_axis(node: cst.Call, axis: str) -> bool:
    """Whether a reduction reduces only axes given as literals other than -1 (``axis=(1, 2)``, ``axis=-2``).

    The rank is not known here; a positive axis that is in fact the last makes the next layer's width check
    fail loudly, never compute something else.
    """
    bound = {arg.keyword.value: arg.value for arg in node.args if arg.keyword is not None}
    positional = [arg.value for arg in node.args if arg.keyword is None]
    value = bound.get(axis, positional[1] if len(positional) > 1 else None)
    elements = [e.value for e in value.elements] if isinstance(value, (cst.Tuple, cst.List)) else [value]
    return value is not None and all(
        integer_literal(e) is not None and integer_literal(e) not in (0, -1) for e in elements
    )


def integer_literal(node: cst.BaseExpression | None) -> int | None:
    """An integer literal, possibly negative (an axis ``1``, ``-2``)."""
    if isinstance(node, cst.Integer):
        return int(node.value)
    if m.matches(node, m.UnaryOperation(m.Minus(), m.Integer())):
        return -int(node.expression.value)  # type: ignore[union-attr]
    return None


def assigned_names(node: cst.CSTNode) -> set[str]:
    """Names (re)bound by the statements below ``node`` (assignments, ``for`` targets, ``:=``)."""
    found: set[str] = set()
    for current in walk(node):
        if isinstance(current, (cst.AssignTarget, cst.AugAssign, cst.AnnAssign, cst.For, cst.NamedExpr)):
            found |= _target_names(current.target)
    return found


def _target_names(target: cst.BaseExpression) -> set[str]:
    """The names an assignment target binds (``a``, ``a, (b, *c)``; not ``self.a`` or ``a[i]``)."""
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        return set().union(*(_target_names(element.value) for element in target.elements))
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return set()


def _carried(width: Width, variable: str, variables: dict[str, str]) -> bool:
    """Whether ``width`` (after one iteration) can update ``variable`` at the end of ``__init__``'s loop: it
    reads no other carried variable (those are updated in turn)."""
    if not isinstance(width, str):
        return False
    try:
        names = set(_names_in(expr(width)))
    except cst.ParserSyntaxError:
        return False
    return not names & (set(variables.values()) - {variable})


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``… : the first not in ``taken``."""
    candidate, index = base, 0
    while candidate in taken:
        index += 1
        candidate = f"{base}_{index}"
    return candidate


def _names_in(node: cst.CSTNode) -> list[str]:
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            found.append(current.value)
        stack.extend(children(current))
    return found


def output_width(
    layer: str, construction: cst.Call, given: Width, argument_width: Callable[[cst.BaseExpression], Width]
) -> Width:
    """The output width of the Haiku ``layer`` built by ``construction`` when it is given ``given``."""
    if layer in SAME_WIDTH_LAYERS:
        return given
    found = OUTPUT_ARGUMENT.get(layer)
    if found is None:
        return None
    parameter, position = found
    positional = [arg for arg in construction.args if arg.keyword is None and not arg.star]
    for arg in construction.args:
        if arg.keyword is not None and arg.keyword.value == parameter:
            return argument_width(arg.value)
    if len(positional) > position:
        return argument_width(positional[position].value)
    return None


def substitute(width: Width, bindings: dict[str, Width]) -> Width:
    """Rewrite a width in a child's terms (``self.features``, :data:`INPUT`, a constructor parameter) into its
    parent's terms: each name ``bindings`` has is replaced (by its width there, None: unknown)."""
    if isinstance(width, tuple):
        return tuple(substitute(part, bindings) for part in width)
    if width is None:
        return None
    try:
        tree = expr(width)
    except cst.ParserSyntaxError:
        return None
    missing = False

    class _Substitute(cst.CSTTransformer):
        def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
            nonlocal missing
            if m.matches(original.value, m.Name("self")):
                value = bindings.get(f"self.{original.attr.value}")
                if not isinstance(value, str):
                    missing = True
                    return updated
                return expr(f"({value})") if " " in value else expr(value)
            return updated

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            attributes.add(id(node.attr))  # ``x.width`` names no variable
            return not m.matches(node.value, m.Name("self"))

        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
            nonlocal missing
            if original.value in bindings and id(original) not in attributes:
                value = bindings[original.value]
                if not isinstance(value, str):
                    missing = True
                    return updated
                return expr(f"({value})") if " " in value else expr(value)
            return updated

    attributes: set[int] = set()

    result = fast_transform(tree, _Substitute(), TOKENS)
    return None if missing else code_of(result)


#: ``NAME.shape[-1]``: the width of a value, read in the source.
LAST_SIZE = m.Subscript(
    m.Attribute(m.Name(), m.Name("shape")),
    [m.SubscriptElement(m.Index(m.UnaryOperation(m.Minus(), m.Integer("1"))))],
)


def width_reads(node: cst.CSTNode) -> set[str]:
    """The names whose width ``node`` reads as ``NAME.shape[-1]``."""
    return {
        found.value.value.value  # type: ignore[attr-defined]
        for found in walk(node)
        if type(found) is cst.Subscript and m.matches(found, LAST_SIZE)
    }


def with_widths(node: cst.CSTNode, widths: dict[str, str]) -> cst.CSTNode:
    """``node`` with each ``NAME.shape[-1]`` for a name of ``widths`` written as that width (source text)."""

    def width_of(found: cst.CSTNode) -> cst.BaseExpression:
        name = found.value.value.value  # type: ignore[attr-defined]
        if name not in widths:
            return found  # type: ignore[return-value]
        width = widths[name]
        return expr(f"({width})" if " " in width else width)

    return replace_matching(node, LAST_SIZE, width_of) if widths else node


def input_width_of(node: cst.CSTNode, input_param: str) -> cst.CSTNode:
    """``node`` with ``<input>.shape[-1]`` (the width of the module's own input) written as :data:`INPUT`, and
    ``<input>.dtype`` as :data:`IN_DTYPE`: the constructor parameters that carry them."""
    pattern = m.Subscript(
        m.Attribute(m.Name(input_param), m.Name("shape")),
        [m.SubscriptElement(m.Index(m.UnaryOperation(m.Minus(), m.Integer("1"))))],
    )
    node = replace_matching(node, pattern, cst.Name(INPUT))
    return replace_matching(node, m.Attribute(m.Name(input_param), m.Name("dtype")), cst.Name(IN_DTYPE))


@dataclasses.dataclass(frozen=True)
class Reshaping:
    """What an ``hk.Flatten``/``hk.Reshape`` computes: the leading axes it keeps and the shape of the rest."""

    preserve_dims: int
    output_shape: tuple[str, ...]  # source text of each size (``-1`` for Flatten)

    def applied_to(self, value: str) -> str:
        """The expression computing the module's output on the name or attribute ``value``."""
        if self.preserve_dims == 1 and self.output_shape == ("-1",):
            reshaped = f"{value}.reshape({value}.shape[0], -1)"
        else:
            sizes = ", ".join(self.output_shape) + ("," if len(self.output_shape) == 1 else "")
            reshaped = f"{value}.reshape({value}.shape[:{self.preserve_dims}] + ({sizes}))"
        if self.preserve_dims < 0:
            return reshaped  # Haiku returns no input unchanged: ``ndim <= preserve_dims`` never holds
        return f"{value} if {value}.ndim <= {self.preserve_dims} else {reshaped}"

    def width(self, flat: bool) -> Width:
        """The width of its output: :data:`FLAT` when it flattens a value that is flat or has the input's whole
        shape (``flat``), else the last size of ``output_shape`` when that is a positive literal."""
        last = self.output_shape[-1]
        if self.flattens_examples and flat:
            return FLAT
        return last if last.isdigit() and int(last) > 0 else None

    @property
    def flattens_examples(self) -> bool:
        """Whether it flattens each example of a batch (``hk.Flatten()``): the output width is an example's size."""
        return self.preserve_dims == 1 and self.output_shape == ("-1",)


def reshaping_of(api: str | None, construction: cst.Call) -> Reshaping | str | None:
    """What the ``hk.Flatten(...)``/``hk.Reshape(...)`` construction ``construction`` (the Haiku API its callee
    names: ``api``) computes, why h2f cannot tell (a message), or None when it is no such construction."""
    if api not in RESHAPE_PARAMS:
        return None
    if any(arg.star for arg in construction.args):
        return f"{api} called with *args/**kwargs"
    bound = bind_arguments(construction, RESHAPE_PARAMS[api])
    if bound is None:
        return f"{api} called with more arguments than it takes"
    preserve = integer_literal(bound["preserve_dims"].value) if "preserve_dims" in bound else 1
    if preserve is None or preserve == 0:
        return f"{api} with a preserve_dims other than a non-zero integer literal"
    if api == "haiku.Flatten":
        return Reshaping(preserve, ("-1",))
    shape = bound.get("output_shape")
    if shape is None or not isinstance(shape.value, (cst.Tuple, cst.List)) or not shape.value.elements:
        return f"{api} with an output_shape other than a tuple or list literal"
    sizes = [integer_literal(element.value) for element in shape.value.elements]  # type: ignore[arg-type]
    if None in sizes or any(isinstance(element, cst.StarredElement) for element in shape.value.elements):
        return f"{api} with an output_shape other than integer literals"
    if sizes.count(-1) > 1:
        return f"{api} with -1 more than once in its output_shape (Haiku raises)"
    return Reshaping(preserve, tuple(str(size) for size in sizes))
