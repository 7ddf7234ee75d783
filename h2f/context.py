"""What rules see of the file being migrated, and the single traversal that runs them."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from h2f.diagnostics import LEFT_IN_PLACE, Diagnostic, Severity
from h2f.rule import Trigger
from h2f.syntax import Codegen, expr
from h2f.traversal import NODE_TYPES, TOKENS

if TYPE_CHECKING:
    from h2f.analysis import FileAnalysis
    from h2f.engine import Options
    from h2f.nnx_plan import NnxPlan
    from h2f.rule import Rule


_NEWLINE = re.compile(r"\r\n?|\n")


class _StartRecorder(Codegen):
    """Code generation that notes where each node starts, as an index into the tokens (libcst's
    ``PositionProvider`` computes a line and column for every node and every token, several times a parse)."""

    def __init__(self, module: cst.Module) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.starts: dict[int, int] = {}
        self._stack: list[int] = []

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._stack.append(len(self.tokens))

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._stack.pop()
        self.starts.setdefault(id(node), start)  # a syntactic start recorded inside wins, as in libcst

    def record_syntactic_position(
        self, node: cst.CSTNode, *, start_node: cst.CSTNode | None = None, end_node: cst.CSTNode | None = None
    ) -> _SyntacticStart:
        """Note where ``node`` starts syntactically: where the code generated inside the context starts, or where
        ``start_node`` does."""
        return _SyntacticStart(self, node, start_node)


class _SyntacticStart:
    """:meth:`_StartRecorder.record_syntactic_position`'s context (an object: libcst's generator-based context
    manager costs more, and code generation opens one for most nodes)."""

    __slots__ = ("_recorder", "_node", "_start_node", "_start")

    def __init__(self, recorder: _StartRecorder, node: cst.CSTNode, start_node: cst.CSTNode | None) -> None:
        self._recorder = recorder
        self._node = node
        self._start_node = start_node
        self._start = 0

    def __enter__(self) -> None:
        self._start = len(self._recorder.tokens)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, traceback: object) -> None:
        if kind is None:
            starts = self._recorder.starts
            start_node = self._start_node
            starts[id(self._node)] = starts[id(start_node)] if start_node is not None else self._start


class StartPositions:
    """Where original nodes start (line, 1-based column), as libcst's ``PositionProvider`` says, from a code
    generation pass that only counts tokens, run statement by statement as far as the nodes asked about (most
    diagnostics are not at the end of the file); lines and columns are computed for those nodes."""

    def __init__(self, module: cst.Module) -> None:
        self._recorder = _StartRecorder(module)
        self._statements = iter(module.body)
        for line in module.header:  # what Module._codegen_impl generates before the statements
            line._codegen(self._recorder)
        self._tokens = self._recorder.tokens
        self._starts = self._recorder.starts

    def start(self, node: cst.CSTNode) -> tuple[int, int] | None:
        """``(line, column)`` of ``node``'s first character (column 1-based), or None if it is not in the module's
        statements (the module itself starts at ``(1, 1)``)."""
        index = self._starts.get(id(node))
        while index is None:
            statement = next(self._statements, None)
            if statement is None:
                return None
            statement._codegen(self._recorder)
            index = self._starts.get(id(node))
        lines = _NEWLINE.split("".join(self._tokens[:index]))
        return len(lines), len(lines[-1]) + 1


@dataclasses.dataclass
class MigrationContext:
    """Per-file state shared by the rules: the analysis, the diagnostics, the imports to add."""

    path: str
    options: Options
    wrapper: cst.MetadataWrapper
    analysis: FileAnalysis
    codemod: CodemodContext
    diagnostics: list[Diagnostic] = dataclasses.field(default_factory=list)
    #: Original nodes some rule reported on (so the leftovers rule does not report them twice).
    reported: set[int] = dataclasses.field(default_factory=set)
    #: Original nodes a rule decided to leave exactly as they were (rules that depend on them follow suit).
    left_in_place: set[int] = dataclasses.field(default_factory=set)
    #: Original nodes (by id) → the rules that announced they act on them (:meth:`Rule.announce`).
    announced: dict[int, frozenset[type[Rule]]] = dataclasses.field(default_factory=dict)
    #: Original submodule constructor calls → the node all rules together rewrote them into (rules that move
    #: a construction elsewhere, to ``setup()`` or to the transform's binding, take it from here).
    constructions: dict[cst.CSTNode, cst.CSTNode] = dataclasses.field(default_factory=dict)
    #: The NNX target's nnx.bridge fallback (:func:`h2f.rule.bridge_rules`): the Linen rules migrate the modules,
    #: the NNX transform rule builds each model as ``nnx.bridge.ToNNX(...)`` and turns ``apply`` into model calls.
    bridge: bool = False
    _nnx_plan: NnxPlan | None = None
    _positions: StartPositions | None = None
    #: Where in the analysis' pre-order each diagnostic's node is (see :meth:`keep`).
    _reported_spans: dict[Diagnostic, tuple[int, int]] = dataclasses.field(default_factory=dict)
    #: Where the nodes left in place before rules looked inside are (:meth:`keep_unseen`).
    _unseen_spans: list[tuple[int, int]] = dataclasses.field(default_factory=list)

    @property
    def nnx_plan(self) -> NnxPlan:
        """What the NNX target does with this file (computed once, on first use)."""
        if self._nnx_plan is None:
            from h2f.nnx_plan import NnxPlan

            self._nnx_plan = NnxPlan(self.analysis)
        return self._nnx_plan

    def haiku_name(self, node: cst.CSTNode) -> str | None:
        """The normalized Haiku qualified name of an original expression (``haiku.Linear``), or None."""
        return self.analysis.haiku_name(node)

    def report(self, node: cst.CSTNode, code: str, message: str, severity: Severity = "warning") -> None:
        """Record a diagnostic at the start of the original ``node``."""
        self.reported.add(id(node))
        span = self.analysis.span(node)
        if span is not None and any(start < span[0] < end for start, end in self._unseen_spans):
            return  # (inside code left in place as a whole: its own diagnostic says why)
        line, col = self.start(node)
        diagnostic = Diagnostic(self.path, line, col, code, message, severity)
        if diagnostic not in self.diagnostics:
            self.diagnostics.append(diagnostic)
            if span is not None:
                self._reported_spans[diagnostic] = span

    def start(self, node: cst.CSTNode) -> tuple[int, int]:
        """Where the original ``node`` starts: 1-based line and column."""
        if self._positions is None:
            self._positions = StartPositions(self.analysis.module)
        return self._positions.start(node) or (1, 1)

    def keep(self, node: cst.CSTNode, code: str, message: str) -> None:
        """Leave the original ``node`` exactly as it is, its children too (the dispatcher restores it when it leaves
        the node), and say why (``message`` should end with "left in place")."""
        self.left_in_place.add(id(node))
        self.withdraw_edits(node)
        self.report(node, code, message)

    def keep_unseen(self, node: cst.CSTNode, code: str, message: str) -> None:
        """:meth:`keep` the original ``node`` before the rules look inside it (from a ``visit_`` hook): what they
        would say about its insides is not reported, since ``message`` says why all of it is left in place (a
        Haiku ``get_state`` in a function that stays Haiku is not "outside a transformed function")."""
        span = self.analysis.span(node)
        if span is not None:
            self._unseen_spans.append(span)
        self.keep(node, code, message)

    def withdraw_edits(self, node: cst.CSTNode) -> None:
        """The original ``node`` goes into the output as it was: withdraw what rules said inside it about their
        edits (H2F012's "the name is dropped", H2F050 on a BatchNorm that stays Haiku's), which are undone; what
        they said was left in place (:data:`~h2f.diagnostics.LEFT_IN_PLACE`) stays true."""
        span = self.analysis.span(node)
        if span is not None:
            self.diagnostics = [
                diagnostic
                for diagnostic in self.diagnostics
                if diagnostic.code in LEFT_IN_PLACE
                or (inner := self._reported_spans.get(diagnostic)) is None
                or not span[0] <= inner[0] < span[1]
            ]

    def require_import(self, module: str, obj: str | None = None, asname: str | None = None) -> None:
        """Make sure the migrated file imports ``module`` (or ``obj`` from it)."""
        AddImportsVisitor.add_needed_import(self.codemod, module, obj, asname)

    def release_import(self, node: cst.CSTNode) -> None:
        """Drop the import that binds the original name ``node`` (``dataclasses.dataclass``, ``Optional``) if the
        migration leaves it unused."""
        base = node
        while isinstance(base, cst.Attribute):
            base = base.value
        for name in self.analysis.qualified_names(base):
            module, _, obj = name.rpartition(".")
            if isinstance(node, cst.Attribute) or not module:
                RemoveImportsVisitor.remove_unused_import(self.codemod, name)
            else:
                RemoveImportsVisitor.remove_unused_import(self.codemod, module, obj)

    def module_method(self, node: cst.CSTNode, attribute: str) -> cst.Attribute:
        """``self.<attribute>`` of the module the migrated code at the original ``node`` runs in (``_layer.`` in a
        function ``hk.layer_stack`` stacks: :meth:`~h2f.analysis.FileAnalysis.module_reference`)."""
        return expr(f"{self.analysis.module_reference(node)}.{attribute}")  # type: ignore[return-value]

    def linen(self, attribute: str) -> cst.Attribute:
        """``nn.<attribute>``, importing ``flax.linen`` under the alias the analysis chose."""
        alias = self.analysis.linen_alias
        self.require_import("flax.linen", asname=alias if alias != "flax.linen" else None)
        return expr(f"{alias}.{attribute}")  # type: ignore[return-value]

    def nnx(self, attribute: str) -> cst.Attribute:
        """``nnx.<attribute>``, importing ``nnx`` from ``flax``."""
        self.require_import("flax", "nnx")
        return expr(f"nnx.{attribute}")  # type: ignore[return-value]

    def haiku_default_dtype(self) -> cst.BaseExpression:
        """``jnp.float32`` (importing ``jax.numpy as jnp``): the dtype Haiku gives a parameter or state that
        states none, and passes its initializer."""
        self.require_import("jax.numpy", asname="jnp")
        return expr("jnp.float32")

    @property
    def eager_nnx(self) -> bool:
        """Whether the file's modules become NNX classes: the NNX target, not its nnx.bridge fallback (whose
        modules are the Linen target's)."""
        return self.options.target == "nnx" and not self.bridge

    def modules_namespace(self, attribute: str) -> cst.Attribute:
        """``<attribute>`` of the library the file's modules use: ``nnx.`` for eager NNX, else Linen's ``nn.``."""
        return self.nnx(attribute) if self.eager_nnx else self.linen(attribute)


class LeftInPlace(Exception):
    """Raised by a rule's ``leave_`` hook, or by a helper it calls, to leave the node being left exactly as it was
    (:meth:`MigrationContext.keep`) with the diagnostic ``code``/``message`` ("..., left in place")."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_SENTINELS = frozenset({cst.RemovalSentinel, cst.FlattenSentinel})
#: :class:`~h2f.rule.Trigger`'s flags as plain ints (an ``IntFlag`` operation runs Python code: these run per node).
_HAIKU, _MADE, _MODULE, _ANNOUNCED = map(int, (Trigger.HAIKU, Trigger.MADE, Trigger.MODULE, Trigger.ANNOUNCED))
#: Every kind of node: what a hook without a trigger acts on.
_EVERY = -1
_NOBODY: frozenset[type[Rule]] = frozenset()
_NO_HOOKS: list[Callable[..., Any]] = []


#: Literals: their only children are parentheses, so no rule can change one but through a hook for its type.
_LITERALS = frozenset({cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString})


@functools.cache
def _inert(rules: tuple[type[Rule], ...]) -> frozenset[type]:
    return frozenset(
        kind
        for kind in TOKENS | _LITERALS
        if not any(hasattr(rule, f"{hook}_{kind.__name__}") for rule in rules for hook in ("visit", "leave"))
    )


@functools.cache
def _hooked_types(rules: tuple[type[Rule], ...]) -> frozenset[type]:
    """The node types ``rules`` have a hook for that acts on every node of the type: a ``visit_`` hook, or a
    ``leave_`` hook without a trigger."""
    return frozenset(
        kind
        for kind in NODE_TYPES
        for rule in rules
        if hasattr(rule, f"visit_{kind.__name__}")
        or hasattr(rule, f"leave_{kind.__name__}")
        and f"leave_{kind.__name__}" not in rule.triggers
    )


@functools.cache
def _types_with(rules: tuple[type[Rule], ...], prefix: str) -> frozenset[type]:
    """The node types some of ``rules`` has a ``<prefix><Node>`` hook for (``visit_``, ``leave_``): the dispatcher
    looks for no hooks on the others (most of the types it meets)."""
    return frozenset(kind for kind in NODE_TYPES if any(hasattr(rule, f"{prefix}{kind.__name__}") for rule in rules))


@functools.cache
def _hooked(rules: tuple[type[Rule], ...], hook: str) -> tuple[tuple[int, type[Rule], int, frozenset[str] | None], ...]:
    """The ``rules`` that have a method called ``hook``: (position, rule, its trigger as an int, ``-1`` without one,
    and for ``leave_Call`` the rule's ``call_apis``)."""
    return tuple(
        (index, rule, int(rule.triggers.get(hook, _EVERY)), rule.call_apis if hook == "leave_Call" else None)
        for index, rule in enumerate(rules)
        if hasattr(rule, hook)
    )


@functools.cache
def _call_apis(rules: tuple[type[Rule], ...]) -> frozenset[str]:
    """Every Haiku name some rule's ``call_apis`` lists: the others need not be told apart."""
    return frozenset().union(*(rule.call_apis for rule in rules if rule.call_apis is not None))


@functools.cache
def _having(
    rules: tuple[type[Rule], ...],
    hook: str,
    kinds: int = _EVERY,
    announcers: frozenset[type[Rule]] = _NOBODY,
    haiku: str | None = None,
    made: str | None = None,
) -> tuple[int, ...]:
    """Which of ``rules`` (by position) have a method called ``hook`` that acts on a node :meth:`RuleDispatcher._key`
    describes (``kinds``, a :class:`~h2f.rule.Trigger` mask; the rules that announced it; for a call, the Haiku name
    of its callee and of what made it): learned once per rule set, not per file. A hook without a trigger acts on
    every node; without a key, every hook is meant."""
    return tuple(
        index
        for index, rule, trigger, apis in _hooked(rules, hook)
        if trigger == _EVERY
        or kinds == _EVERY
        or trigger & kinds & _HAIKU
        and (apis is None or haiku in apis)
        or trigger & kinds & _MADE
        and (apis is None or made in apis)
        or trigger & kinds & _MODULE
        or trigger & _ANNOUNCED
        and rule in announcers
    )


class RuleDispatcher(cst.CSTTransformer):
    """One traversal of the file (:func:`h2f.traversal.fast_transform`, entering no token type without a hook);
    each node is offered to every rule's ``visit_``/``leave_`` hook in order (a ``leave_`` hook with a trigger,
    ``Rule.triggers``, only to the nodes that are what it acts on)."""

    def __init__(self, ctx: MigrationContext, rules: list[Rule]) -> None:
        super().__init__()
        self.ctx = ctx
        self.rules = rules
        self._rule_types = tuple(map(type, rules))
        self._visit_hooks: dict[type, list[Callable[..., Any]]] = {}
        self._leave_hooks: dict[type, list[Callable[..., Any]]] = {}
        self._visited = _types_with(self._rule_types, "visit_")
        self._left = _types_with(self._rule_types, "leave_")
        self._call_apis = _call_apis(self._rule_types)
        #: :meth:`_key` of a Name, Attribute or Call → the ``leave_`` hooks that act on it.
        self._triggered_hooks: dict[tuple[Any, ...], list[Callable[..., Any]]] = {}
        #: Original calls (by id) → :meth:`_made` of them, for every call of the file once :meth:`busy` ran.
        self._calls: dict[int, tuple[int, str | None]] = {}
        #: :meth:`busy`, kept up to date as rules announce nodes (None until it runs).
        self._busy: set[int] | None = None
        #: How many nodes of ``ctx.announced`` :attr:`_busy` accounts for.
        self._announced = 0

    def _hooks_for(self, name: str, *key: Any) -> list[Callable[..., Any]]:
        """The rules' hooks called ``name`` that act on a node of the :meth:`_key` ``key`` (all of them when
        none is given), in rule order."""
        return [getattr(self.rules[index], name) for index in _having(self._rule_types, name, *key)]

    def _key(self, node: cst.CSTNode) -> tuple[Any, ...]:
        """What the original Name, Attribute or Call ``node`` is, as far as the triggers of hooks tell nodes apart:
        a :class:`~h2f.rule.Trigger` mask, the rules that announced it, and for a call the Haiku names of its
        callee and of what made it (``haiku.BatchNorm`` for ``self.bn(x)``)."""
        analysis = self.ctx.analysis
        if type(node) is cst.Name:
            return (_HAIKU,) if analysis.haiku_name(node) is not None else (0,)
        announcers = self.ctx.announced.get(id(node), _NOBODY)
        if type(node) is cst.Attribute:
            return (_HAIKU if analysis.haiku_name(node) is not None else 0, announcers)
        haiku = analysis.haiku_name(node.func)  # type: ignore[attr-defined]
        made = self._calls.get(id(node))
        kinds, made_name = self._made(node) if made is None else made  # type: ignore[arg-type]
        if haiku is not None:
            kinds |= _HAIKU
        # (a name no rule's call_apis lists is as good as another: fewer keys)
        haiku = haiku if haiku is None or haiku in self._call_apis else ""
        made_name = made_name if made_name is None or made_name in self._call_apis else ""
        return (kinds, announcers, haiku, made_name)

    def _made(self, call: cst.Call) -> tuple[int, str | None]:
        """Which of ``Trigger.MADE`` and ``Trigger.MODULE`` the original ``call`` is (an int mask), and the Haiku
        name of what made its callee (``haiku.BatchNorm`` for ``self.bn(x)``) or None."""
        analysis = self.ctx.analysis
        made = analysis.constructor_of(call.func)
        made_name = None if made is None else analysis.haiku_name(made.func)
        kinds = 0 if made_name is None else _MADE
        if analysis.local_module_class(call.func) is not None or analysis.builds_imported_module(call):
            kinds |= _MODULE
        return kinds, made_name

    def busy(self) -> set[int] | None:
        """The original nodes (by id) the pass must enter, for :func:`h2f.traversal.fast_transform`'s ``only``:
        each node some hook may act on and its ancestors. A node no hook acts on and with no such node inside comes
        out as it went in; most of a file's expressions are such subtrees. Those are: a node whose type some rule
        hooks without a trigger, a name a Haiku import binds (a Haiku attribute or call has one inside), a call
        ``Trigger.MADE`` or ``Trigger.MODULE``, an announced node (the set grows as rules announce nodes during the
        pass). None (enter every node) when a rule hooks a token type: tokens are not among the analysis' nodes."""
        hooked = _hooked_types(self._rule_types)
        if hooked & TOKENS:
            return None
        analysis = self.ctx.analysis
        aliases = analysis.haiku_aliases
        calls = analysis.nodes_of(cst.Call)
        self._calls = {id(call): self._made(call) for call in calls}  # type: ignore[arg-type]
        self._busy = set()
        self._mark(
            itertools.chain(
                (node for kind in hooked for node in analysis.nodes_of(kind)),
                (name for name in analysis.nodes_of(cst.Name) if name.value in aliases),  # type: ignore[attr-defined]
                (call for call in calls if self._calls[id(call)][0]),
            )
        )
        self._note_announced()
        return self._busy

    def _mark(self, nodes: Iterable[cst.CSTNode | None]) -> None:
        """Add the original ``nodes`` and their ancestors to :attr:`_busy`."""
        busy, parent_of = self._busy, self.ctx.analysis.parents.by_id().get
        for node in nodes:
            while node is not None and id(node) not in busy:  # type: ignore[operator]
                busy.add(id(node))  # type: ignore[union-attr]
                node = parent_of(id(node))

    def _note_announced(self) -> None:
        """Mark the nodes announced since the last call (``ctx.announced`` keeps them in the order they came)."""
        announced = self.ctx.announced
        if self._busy is not None:
            original = self.ctx.analysis.original
            self._mark(original(key) for key in itertools.islice(announced, self._announced, None))
        self._announced = len(announced)

    def inert_types(self) -> frozenset[type]:
        """The token types (whitespace, punctuation, operators) and literals no rule has a hook for: the pass need
        not enter them (:func:`h2f.traversal.fast_transform`)."""
        return _inert(self._rule_types)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if type(node) not in self._visited:
            return True
        hooks = self._visit_hooks.get(type(node))
        if hooks is None:  # looked up once per node type
            hooks = self._visit_hooks[type(node)] = self._hooks_for(f"visit_{type(node).__name__}")
        for hook in hooks:
            hook(node)
        if hooks and len(self.ctx.announced) != self._announced:  # (rules announce in their hooks)
            self._note_announced()
        return True

    # Rules have no visit_<Node>_<attribute> hooks: skip libcst's look-up of one per child attribute.
    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        result: Any = updated_node
        node_type = type(original_node)
        kinds = _EVERY
        if node_type is cst.Name or node_type is cst.Attribute or node_type is cst.Call:
            key = (node_type, *self._key(original_node))
            kinds = key[1]
            hooks = self._triggered_hooks.get(key)
            if hooks is None:
                hooks = self._triggered_hooks[key] = self._hooks_for(f"leave_{node_type.__name__}", *key[1:])
        elif node_type in self._left:
            hooks = self._leave_hooks.get(node_type)
            if hooks is None:
                hooks = self._leave_hooks[node_type] = self._hooks_for(f"leave_{node_type.__name__}")
        else:
            hooks = _NO_HOOKS
        for hook in hooks:
            try:
                replacement = hook(original_node, result)
            except LeftInPlace as refusal:
                self.ctx.keep(original_node, refusal.code, refusal.message)
                break
            if replacement is not None:
                result = replacement
                if type(result) in _SENTINELS:  # removed or flattened: no later rule sees a node
                    break
        if hooks and len(self.ctx.announced) != self._announced:
            self._note_announced()
        if id(original_node) in self.ctx.left_in_place:
            result = original_node  # exactly as it was: not even its arguments translated (a Haiku layer kept
            # with a Flax initializer would call it with Haiku's signature)
        # (a module is built by a call of a module class of the file or the run, as :meth:`_key` found, or of a
        # Haiku layer)
        if node_type is cst.Call and (
            kinds & _MODULE or kinds & _HAIKU and self.ctx.analysis.is_haiku_layer_call(original_node) is not None
        ):
            self.ctx.constructions[original_node] = result
        return result
