"""One read of a file: which Haiku it uses and where.

The analysis is built once per file from the metadata wrapper and shared by every rule, so rules never
re-walk the tree to answer "is this Haiku?", "is this class an hk.Module?", "is this variable a transformed
function?".
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import libcst as cst
import libcst.matchers as m

from h2f.context import StartPositions
from h2f.names import (
    BATCH_STATS_COLLECTION,
    DROPOUT_STREAM,
    HAIKU_LAYERS,
    HAIKU_MODULE_CLASSES,
    INITIALIZERS,
    LAYERS,
    LIFTED_TRANSFORMS,
    SAMPLE_STREAM,
    STATE_COLLECTION,
    class_name_for,
    normalize_haiku_name,
)
from h2f.project import (
    INITIALIZER_EXPORT,
    MODULE_CLASS_EXPORT,
    ExportedTransform,
    ProjectIndex,
    defines,
    exported_name,
    file_key,
    import_keys,
    module_path,
    relative_import_key,
    star_prefixes,
)
from h2f.resolver import NodeMap, Resolver, Scope
from h2f.syntax import (
    bind_arguments,
    imported_module,
    is_name_attribute,
    is_none,
    is_self_attribute,
    unpacks,
    unpacks_in_two,
)
from h2f.traversal import concrete_types, walk

_Node = TypeVar("_Node", bound=cst.CSTNode)

TRANSFORMS = {
    "haiku.transform": ("transform", False),
    "haiku.transform_with_state": ("transform", True),
    "haiku.multi_transform": ("multi_transform", False),
    "haiku.multi_transform_with_state": ("multi_transform", True),
}
WITHOUT_APPLY_RNG = "haiku.without_apply_rng"
#: Haiku functions that create variables or submodules where they are called.
_INLINE_BUILDERS = frozenset(
    {"haiku.dropout", "haiku.get_parameter", "haiku.get_state", "haiku.set_state", "haiku.scan", "haiku.layer_stack"}
)


#: Haiku APIs that never create parameters (a call of any other Haiku API may).
_PARAMETERLESS_APIS = frozenset(
    {
        "haiku.get_state",
        "haiku.set_state",
        "haiku.next_rng_key",
        "haiku.maybe_next_rng_key",
        "haiku.dropout",
        "haiku.running_init",
        "haiku.max_pool",
        "haiku.avg_pool",
        "haiku.MaxPool",
        "haiku.AvgPool",
        "haiku.Flatten",
        "haiku.Reshape",
    }
)
#: Nodes whose body runs repeatedly (or not at all): loops, comprehensions, nested functions.
_REPEATED = frozenset(
    {cst.For, cst.While, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.Lambda, cst.FunctionDef}
)
#: JAX transforms whose result takes the arguments of the function they transform, in the same places.
_ARGUMENT_KEEPERS = frozenset(
    {"jax.grad", "jax.value_and_grad", "jax.jit", "jax.vmap", "jax.checkpoint", "jax.remat", "jax.hessian"}
)
#: Not asked about yet (None is an answer: "no Haiku name").
_UNKNOWN = object()
#: Modules whose functions build no Haiku module (prefixes of qualified names).
_PARAMETERLESS_MODULES = ("jax.", "numpy.", "math.", "builtins.", "operator.", "functools.", "typing.")


@dataclasses.dataclass(frozen=True)
class ImportAlias:
    """One imported Haiku name, as libcst's import visitors spell it."""

    module: str
    obj: str | None
    asname: str | None


@dataclasses.dataclass
class ModuleClass:
    """A class that is (transitively) an ``hk.Module`` subclass."""

    name: str
    node: cst.ClassDef
    haiku_base: str | None  # "haiku.Module", or the Haiku layer it subclasses, or None for a local base
    local_base: str | None
    init: cst.FunctionDef | None
    methods: dict[str, cst.FunctionDef]

    def name_position(self) -> int | None:
        """Where the constructor takes ``name`` among its positional parameters (``self`` not counted), or None."""
        if self.init is None:
            return None
        names = [param.name.value for param in (*self.init.params.posonly_params, *self.init.params.params)][1:]
        return names.index("name") if "name" in names else None


@dataclasses.dataclass
class Transform:
    """A name bound to the result of ``hk.transform`` and friends."""

    name: str
    kind: str  # "transform" or "multi_transform"
    with_state: bool
    apply_rng: bool
    function: cst.FunctionDef | cst.Lambda | None
    function_name: str | None
    binding: cst.CSTNode | None  # the Assign, the decorated FunctionDef, the call itself; None when only typed
    methods: tuple[str, ...] = ()  # multi_transform: names of the apply functions, in order
    #: For transforms imported from another file: that file's rng streams and collections.
    rng_streams: frozenset[str] | None = None
    collections: frozenset[str] | None = None


@dataclasses.dataclass
class KeptClass:
    """A module class another file of the run keeps Haiku (:attr:`ExportedTransform.migrated` is false), as this
    file reaches it: imported by name, read through its module (``blocks.Block``), or subclassed here."""

    exported: ExportedTransform
    #: The module that keeps it, as this file names it (``blocks``, ``.blocks``).
    module: str
    #: How messages name it: the class, or this file's subclass of it.
    described: str
    #: The original nodes that read it (or the subclass): where code may build it.
    reads: list[cst.CSTNode]

    @property
    def defined_in(self) -> str:
        """The module that defines it, as the run names it (``pkg.blocks``, also when this file imports it through
        a re-export), else as this file names it."""
        return self.exported.module or self.module


class FileAnalysis:
    """Everything rules need to know about the Haiku in one file."""

    def __init__(self, wrapper: cst.MetadataWrapper, project: ProjectIndex | None = None) -> None:
        self.wrapper = wrapper
        self.module = wrapper.module
        self.haiku_imports: list[ImportAlias] = []
        self.haiku_aliases: set[str] = set()
        self.module_classes: dict[str, ModuleClass] = {}
        #: Every transform of the file, keyed by name and declaring node (two scopes may bind the same name).
        self.transforms: dict[str, Transform] = {}
        self._by_name: dict[str, Transform | None] = {}  # None: bound to different transforms in different places
        self.functions: dict[str, cst.FunctionDef] = {}
        #: Functions of this file a transform runs through an expression h2f cannot see into (``functools.partial``)
        #: → that expression: they stay Haiku.
        self.wrapped_functions: dict[int, cst.BaseExpression] = {}
        #: Functions of this file passed to a function (or class) of this file that transforms that parameter,
        #: which h2f cannot see through (``DQN(network=network)``, ``hk.transform(network)`` in ``DQN.__init__``)
        #: → the call passing them: they stay Haiku.
        self.passed_functions: dict[int, cst.Call] = {}
        #: Functions of this file whose transform is unpacked where h2f cannot give Linen's ``init``/``apply`` Haiku's
        #: signatures: ``init, apply = hk.transform_with_state(f)`` (with state, with an apply rng, or of a
        #: ``multi_transform``), or a transform a factory returns to a call that unpacks it (``init, apply =
        #: make_network()``: :meth:`unpacking_factory`) → that transform: they stay Haiku.
        self.unpacked_functions: dict[int, cst.Call] = {}
        #: Configuration dicts (literal or ``dict(...)``) only ever splatted into one Haiku layer, whose keys the
        #: layers rule renames.
        self.splat_configs: dict[cst.CSTNode, str] = {}
        self._splat_candidates: dict[cst.CSTNode, set[str]] = {}
        self._declared: dict[cst.CSTNode, Transform] = {}
        self._generated_names: dict[int, str] = {}
        #: Callables that stand for a transform's apply: ``apply_fn = jax.jit(model.apply)``, the names unpacked
        #: from a multi_transform's apply (with their method), a TrainState's ``.apply_fn`` (key ``.apply_fn``).
        self._aliases: dict[cst.CSTNode, tuple[str, Transform, str | None]] = {}  # declared name → (init|apply, …)
        #: ``.apply_fn`` of a TrainState created with ``apply_fn=model.apply``.
        self.apply_fn_transform: Transform | None = None
        #: Flax rng streams the migrated code draws from, and variable collections it mutates.
        self.rng_streams: set[str] = set()
        self.collections: set[str] = set()
        self.dropout_keys: set[cst.CSTNode] = set()
        self.linen_alias = "nn"
        self.project: ProjectIndex = project or {}
        self.path: str | None = None
        #: Functions another file of the run defines that return a transform, by the name this file imports them as.
        self.imported_factories: dict[str, ExportedTransform] = {}
        #: Calls of an imported factory whose result is unpacked (``init, apply = make_network()``): the other file
        #: migrates the transform the factory returns to a Flax model, which is not Haiku's two functions.
        self.unpacked_imported_factories: list[cst.Call] = []
        #: Haiku initializers another file of the run binds at module level, by the name this file imports them as.
        self.imported_initializers: set[str] = set()
        #: Module classes another file of the run defines, by the name this file imports them as.
        self.imported_module_classes: dict[str, ExportedTransform] = {}
        #: (Local name, the import binding it, at module level or in a function) → the module class another file
        #: of the run keeps Haiku.
        self.imported_haiku_classes: dict[tuple[str, cst.ImportFrom], ExportedTransform] = {}
        #: ``blocks.Block`` where ``blocks`` is imported and another file of the run keeps ``Block`` Haiku.
        self.haiku_classes_read_through_modules: dict[cst.Attribute, tuple[ExportedTransform, str]] = {}
        #: Local classes subclassing one of those (through an import or a module): the class → its base's.
        self.haiku_class_subclasses: dict[cst.ClassDef, tuple[ExportedTransform, str]] = {}
        #: Transforms of other files read as attributes of their module (``models.model``): not followed.
        self.exports_read_through_modules: list[cst.Attribute] = []
        #: Names imported from a module that neither defines nor (visibly) re-exports them, named like a transform
        #: another file of the run exports: not followed.
        self.unfollowed_imports: list[cst.ImportAlias] = []
        #: Every node of the module in pre-order (walk it once, share it; :meth:`subtree` slices it). The same
        #: walk records parents and scopes (:mod:`h2f.resolver`).
        self._resolver = Resolver()
        self._resolver.walk(self.module)
        self.nodes: list[cst.CSTNode] = self._resolver.nodes
        self._positions = self._resolver.positions
        self._ends = self._resolver.ends
        #: The parent of every node.
        self.parents: NodeMap[cst.CSTNode] = self._resolver.parents
        self._haiku_names: dict[int, str | None] = {}
        self._creates_params: dict[int, bool] = {}
        self._creates_params_alone: dict[int, bool] = {}  # (not taking imported code to create any)
        self._own_params_cache: dict[tuple[int, bool], tuple[bool, list[cst.CSTNode]]] = {}
        self._init_stores_cache: dict[int, dict[str, list[cst.BaseExpression]]] = {}
        self._constructors: dict[int, cst.Call | None] = {}
        self._features: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
        #: Node type -> where the nodes :meth:`nodes_of` lists for it are in :attr:`nodes` (for :meth:`nodes_in`).
        self._type_positions: dict[type, list[int]] = {}

    def span(self, node: cst.CSTNode) -> tuple[int, int] | None:
        """Where an original node and its descendants are in :attr:`nodes` (pre-order); None for a node the
        migration made. (A migrated tree holds original nodes wherever nothing inside them changed.)"""
        start = self._positions.get(id(node))
        return (start, self._ends[start]) if start is not None and self.nodes[start] is node else None

    def positions_by_id(self) -> tuple[Mapping[int, int], Sequence[int]]:
        """Where every original node is in :attr:`nodes`, by id, and where the subtree of the node at each position
        ends: :meth:`span` for a walk that asks of many nodes (without a call per node); valid for nodes alive when
        it asks (a freed node's id may be another node's), as a tree's nodes are."""
        return self._positions, self._ends

    def original(self, key: int) -> cst.CSTNode | None:
        """The original node whose ``id()`` is ``key``; None when no original node has it (a node the migration
        made)."""
        start = self._positions.get(key)
        return None if start is None else self.nodes[start]

    def subtree(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        """:func:`walk` of ``node``, sliced from the module's walk when it is one of the module's nodes."""
        span = self.span(node)
        return walk(node) if span is None else self.nodes[span[0] : span[1]]

    def nodes_in(self, node: cst.CSTNode, kind: type[_Node]) -> list[_Node]:
        """The nodes of exactly the concrete ``kind`` in :meth:`subtree` of ``node``, in source order: for one of the
        module's nodes, a slice of :meth:`nodes_of` found by bisection (a scan of the subtree tests every node)."""
        span = self.span(node)
        if span is None:
            return [found for found in walk(node) if type(found) is kind]  # type: ignore[misc]
        positions = self._type_positions.get(kind)
        if positions is None:
            positions = self._type_positions[kind] = [
                self._positions[id(found)] for found in self._by_type.get(kind, ())
            ]
        first = bisect.bisect_left(positions, span[0])
        return self._by_type.get(kind, [])[first : bisect.bisect_left(positions, span[1], first)]  # type: ignore[return-value]

    @functools.cached_property
    def scopes(self) -> NodeMap[Scope]:
        """The scope every node is evaluated in (names are resolved on first use)."""
        return self._resolver.scopes

    @classmethod
    def build(
        cls, wrapper: cst.MetadataWrapper, project: ProjectIndex | None = None, path: str | None = None
    ) -> FileAnalysis:
        """Analyse the file behind ``wrapper`` (metadata is resolved once, when first needed).

        ``project`` holds the transforms other files of the run export, so their imports are recognised; the
        file's ``path`` resolves its relative imports (``from .models import model``).
        """
        analysis = cls(wrapper, project)
        analysis.path = path
        analysis._find_imports()
        analysis._find_haiku_aliases()
        analysis._find_exports_read_through_modules()
        analysis._find_haiku_classes_read_through_modules()
        if analysis.haiku_imports or analysis.transforms or analysis.imported_factories:
            analysis._find_definitions()
            analysis._check_splat_configs()
            analysis._add_typed_transforms()
            analysis._find_passed_transforms()
            analysis._find_multi_transform_methods()
            analysis._find_apply_aliases()
            analysis._choose_linen_alias()
        return analysis

    # ----- queries -------------------------------------------------------------------------------------

    def haiku_name(self, node: cst.CSTNode) -> str | None:
        """The normalized Haiku qualified name of an original Name/Attribute node (``haiku.Linear``), or None."""
        if type(node) is cst.Name and node.value not in self.haiku_aliases:
            return None  # (most nodes asked about: :meth:`_may_be_haiku` of a name, with nothing to remember)
        found = self._haiku_names.get(id(node), _UNKNOWN)  # every rule asks about the same callees: the hot path
        return self._remembered(self._haiku_names, node, self._haiku_name) if found is _UNKNOWN else found

    def _haiku_name(self, node: cst.CSTNode) -> str | None:
        if (type(node) is cst.Name or type(node) is cst.Attribute) and self._may_be_haiku(node):
            for name in self.qualified_names(node):
                if name == "haiku" or name.startswith("haiku."):
                    return normalize_haiku_name(name)
        return None

    def _remembered(self, cache: dict[int, Any], node: cst.CSTNode, compute: Callable[[Any], Any]) -> Any:
        """``compute(node)``, remembered in ``cache`` for an original node (only an original node keeps its id for
        the whole run: a node the migration made may be freed and its id reused)."""
        key = id(node)
        if key in cache:
            return cache[key]
        found = compute(node)
        if key in self._positions:
            cache[key] = found
        return found

    def _may_be_haiku(self, node: cst.Name | cst.Attribute) -> bool:
        """Whether the dotted name ``node`` stands for starts with a name a Haiku import binds: only then can it
        resolve to Haiku, so the resolver is not asked about the file's other names (nor is a variable that
        happens to be called ``haiku`` taken for the library). The first part of :func:`full_name_of`, found
        without building the name (every rule asks of every name)."""
        current: cst.CSTNode = node
        while True:
            kind = type(current)
            if kind is cst.Attribute or kind is cst.Subscript:
                current = current.value  # type: ignore[attr-defined]
            elif kind is cst.Call:
                current = current.func  # type: ignore[attr-defined]
            else:
                return kind is cst.Name and current.value in self.haiku_aliases  # type: ignore[attr-defined]

    def qualified_names(self, node: cst.CSTNode) -> frozenset[str]:
        """Every qualified name of an original expression node through the imports (``jax.numpy.zeros``)."""
        return self._resolver.qualified_names(node)

    def is_haiku_layer_call(self, node: cst.CSTNode) -> str | None:
        """If ``node`` constructs a Haiku layer (``hk.Linear(...)``), its Haiku name."""
        if type(node) is cst.Call:
            name = self.haiku_name(node.func)
            if name in HAIKU_LAYERS:
                return name
        return None

    @functools.cached_property
    def classes_built_by_kept_functions(self) -> dict[str, str]:
        """The module classes of this file that code staying Haiku builds → the name of the function staying Haiku
        that runs that code (:meth:`_reached_by_kept_functions`): they stay Haiku too."""
        return self._reached_by_kept_functions[0]

    @functools.cached_property
    def functions_called_by_kept_functions(self) -> dict[int, str]:
        """The functions of this file (by id; not transformed ones, nor those defined inside a function staying
        Haiku) that code staying Haiku calls → the name of the function staying Haiku that runs that code
        (:meth:`_reached_by_kept_functions`): a helper building Haiku layers for it stays Haiku too."""
        return self._reached_by_kept_functions[1]

    @functools.cached_property
    def _kept_functions(self) -> set[int]:
        """The functions of this file staying Haiku with their transform (by id): :attr:`wrapped_functions`,
        :attr:`passed_functions`, :attr:`unpacked_functions`."""
        return {*self.wrapped_functions, *self.passed_functions, *self.unpacked_functions}

    @functools.cached_property
    def _reached_by_kept_functions(self) -> tuple[dict[str, str], dict[int, str]]:
        """What the functions staying Haiku (:attr:`wrapped_functions`, :attr:`passed_functions`,
        :attr:`unpacked_functions`) run of this file, through the module classes they build and the functions they
        call by name, and so on: those classes (by name) and functions (by id), each → the name of the function
        staying Haiku that reaches it."""
        kept = self._kept_functions
        if not kept:
            return {}, {}
        transformed = {id(t.function) for t in self.transforms.values() if t.function is not None}
        classes: dict[str, str] = {}
        functions: dict[int, str] = {}
        pending: list[tuple[cst.CSTNode, str]] = [
            (node, node.name.value)
            for node in self.nodes_of(cst.FunctionDef)
            if id(node) in kept  # type: ignore[attr-defined]
        ]
        inside_kept = [span for span in (self.span(node) for node, _ in pending) if span is not None]
        while pending:
            holder, keeper = pending.pop()
            for call in self.nodes_in(holder, cst.Call):
                built = self.local_module_class(call.func)
                if built is not None:
                    if built.name not in classes:
                        classes[built.name] = keeper
                        pending.append((built.node, keeper))
                    continue
                called = self.function_named(call.func) if type(call.func) is cst.Name else None
                if (
                    called is not None
                    and not {id(called)} & (kept | transformed | functions.keys())
                    and not any(start < self._positions[id(called)] < end for start, end in inside_kept)
                ):
                    functions[id(called)] = keeper
                    pending.append((called, keeper))
        return classes, functions

    def mentions_haiku(self, node: cst.CSTNode) -> bool:
        """Whether the original ``node`` names anything of Haiku's (``hk.Linear``, ``hk.get_parameter``)."""
        return any(
            self.haiku_name(found) is not None
            for kind in (cst.Name, cst.Attribute)
            for found in self.nodes_in(node, kind)
        )

    def used_outside_kept_code(self, function: cst.FunctionDef) -> bool:
        """Whether a name reading ``function`` (one of :attr:`functions_called_by_kept_functions`) is outside the
        code staying Haiku: the functions staying Haiku and what they reach (:meth:`_reached_by_kept_functions`)."""
        kept = self._kept_functions
        holders = [
            node
            for node in self.nodes_of(cst.FunctionDef, cst.ClassDef)
            if id(node) in kept
            or id(node) in self.functions_called_by_kept_functions
            or (type(node) is cst.ClassDef and node.name.value in self.classes_built_by_kept_functions)
        ]
        spans = [span for span in map(self.span, holders) if span is not None]
        for name in self.nodes_of(cst.Name):
            if name.value != function.name.value or name is function.name or self.function_named(name) is not function:  # type: ignore[attr-defined]
                continue
            position = self._positions[id(name)]
            if not any(start <= position < end for start, end in spans):
                return True
        return False

    def constructs_module(self, node: cst.Call) -> bool:
        """Whether the original call constructs a submodule: a Haiku layer or a module class of this file."""
        return self.is_haiku_layer_call(node) is not None or self.local_module_class(node.func) is not None

    def builds_imported_module(self, node: cst.Call) -> bool:
        """Whether the original call constructs a module class another file of the run defines and migrates
        (imported by name: :attr:`imported_module_classes`)."""
        return type(node.func) is cst.Name and node.func.value in self.imported_module_classes

    def local_module_class(self, node: cst.CSTNode) -> ModuleClass | None:
        """If ``node`` is a Name of a module class defined in this file, that class."""
        if type(node) is cst.Name:
            return self.module_classes.get(node.value)
        return None

    def dataclass_decorator(self, node: cst.ClassDef) -> cst.Decorator | None:
        """The class's bare ``@dataclasses.dataclass`` (Haiku's idiom for a module whose constructor parameters are
        annotated fields, ``name: str | None = None`` among them), or None."""
        for decorator in node.decorators:
            if isinstance(decorator.decorator, (cst.Name, cst.Attribute)) and "dataclasses.dataclass" in (
                self.qualified_names(decorator.decorator)
            ):
                return decorator
        return None

    @functools.cached_property
    def stacked_functions(self) -> dict[cst.FunctionDef, cst.Call]:
        """The functions ``hk.layer_stack`` stacks (decorated, or ``layer_stack(n)(fn)(x)`` with ``fn`` a ``def``
        of this file without decorators) → the ``layer_stack(n, ...)`` call that configures them."""
        stacked = {}
        for node in self.nodes_of(cst.FunctionDef):
            for decorator in node.decorators:  # type: ignore[attr-defined]
                if self._is_layer_stack(decorator.decorator):
                    stacked[node] = decorator.decorator
        for node, function in self.stack_applications.items():
            stacked[function] = node.func.func  # type: ignore[attr-defined]
        return stacked  # type: ignore[return-value]

    @functools.cached_property
    def stack_applications(self) -> dict[cst.Call, cst.FunctionDef]:
        """The calls ``layer_stack(n)(fn)(x)`` → the ``def`` of ``fn`` (one without decorators)."""
        applied = {}
        for node in self.nodes_of(cst.Call):
            inner = node.func  # type: ignore[attr-defined]
            if type(inner) is cst.Call and self._is_layer_stack(inner.func):
                if len(inner.args) == 1 and type(inner.args[0].value) is cst.Name:
                    function = self.function_named(inner.args[0].value)
                    if function is not None and not function.decorators:
                        applied[node] = function
        return applied  # type: ignore[return-value]

    def _is_layer_stack(self, node: cst.BaseExpression) -> bool:
        return type(node) is cst.Call and self.haiku_name(node.func) == "haiku.layer_stack"

    def module_reference(self, node: cst.CSTNode) -> str:
        """The name the migrated code at the original ``node`` reaches its Linen module by: ``_layer`` inside a
        function ``hk.layer_stack`` stacks (it becomes the stacked module's ``__call__(_layer, ...)``, leaving
        ``self`` to the enclosing module), else ``self``."""
        stacked = self.stacked_functions
        return "_layer" if any(ancestor in stacked for ancestor in self.ancestors(node)) else "self"

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        """The ancestors of the original ``node``, nearest first."""
        parent_of = self.parents.by_id().get
        current = parent_of(id(node))
        while current is not None:
            yield current
            current = parent_of(id(current))

    def enclosing(
        self, node: cst.CSTNode, kind: type[cst.CSTNode] | tuple[type[cst.CSTNode], ...]
    ) -> cst.CSTNode | None:
        """The nearest ancestor of the original ``node`` of type ``kind`` (of one of them, as ``isinstance``)."""
        kinds = concrete_types(*kind) if type(kind) is tuple else concrete_types(kind)  # (rules ask of many nodes)
        parent_of = self.parents.by_id().get
        current = parent_of(id(node))
        while current is not None and type(current) not in kinds:
            current = parent_of(id(current))
        return current

    def enclosing_module_class(self, node: cst.CSTNode) -> ModuleClass | None:
        """The module class whose body contains the original ``node``, if any."""
        owner = self.enclosing(node, cst.ClassDef)
        return self.module_classes.get(owner.name.value) if isinstance(owner, cst.ClassDef) else None

    def module_scope(self, node: cst.CSTNode) -> cst.FunctionDef | cst.Lambda | None:
        """The module method or transformed function whose body contains the original ``node``.

        Code there can use ``self`` after migration: methods keep theirs, transformed functions become
        ``__call__`` of a new module. Nested functions and lambdas inside such a body count as inside it.
        """
        transformed = {id(t.function) for t in self.transforms.values() if t.function is not None}
        current = self.parents.get(node)
        while current is not None:
            if type(current) in (cst.FunctionDef, cst.Lambda) and id(current) in transformed:
                return current
            if type(current) is cst.FunctionDef:
                parent = self.parents.get(self.parents.get(current))  # FunctionDef -> IndentedBlock -> ClassDef
                if type(parent) is cst.ClassDef and parent.name.value in self.module_classes:
                    return current
            current = self.parents.get(current)
        return None

    def transform_named(self, name: cst.Name) -> Transform | None:
        """The transform an original Name refers to, resolved through its scope (parameters typed
        ``hk.Transformed`` shadow module-level models of the same name)."""
        scope = self.scopes.get(name)
        if scope is not None and name.value in scope:
            assignments = list(scope[name.value])
            for assignment in assignments:
                declared = getattr(assignment, "node", None)
                if declared in self._declared:
                    return self._declared[declared]
            if any(assignment.scope is not self.scopes.get(self.module) for assignment in assignments):
                return None  # a local of another value (``vae = VAE()`` in the function the ``vae`` transform wraps)
        transform = self._by_name.get(name.value)
        return transform if transform is not None and transform.binding is not None else None

    def _register(self, transform: Transform, declared: cst.CSTNode | None) -> None:
        """Record a transform; ``declared`` is the node a scope lookup of its name leads to."""
        self.transforms[f"{transform.name}@{id(declared)}"] = transform
        if declared is not None:
            self._declared[declared] = transform
        if transform.binding is None:
            return  # only typed: never the fallback for names h2f cannot resolve
        known = self._by_name.get(transform.name, transform)
        self._by_name[transform.name] = transform if known is transform else None

    def function_named(self, name: cst.Name) -> cst.FunctionDef | None:
        """The ``def`` an original Name refers to, resolved through its scope (nested functions of the same
        name in different factories are different functions); None when it is not exactly one ``def``."""
        if name.value not in self._def_names:
            return None  # (most names asked about, by the rules that follow calls into this file's functions)
        scope = self.scopes.get(name)
        if scope is None:
            return self.functions.get(name.value)
        assignments = scope[name.value]
        definitions = [getattr(assignment, "node", None) for assignment in assignments]
        if len(definitions) == 1 and type(definitions[0]) is cst.FunctionDef:
            return definitions[0]
        reached = self.binding_read(name)
        return reached if type(reached) is cst.FunctionDef else None

    def binding_read(self, read: cst.Name) -> cst.CSTNode | None:
        """The binding (its node: a ``def``, a Name target...) the original ``read`` reads, when all the bindings of
        its name are statements of one block run once, in order: the last one before the statement that holds the
        read (``forward = hk.transform(forward)`` reads the ``def forward`` above it, later reads the model); for a
        read in a function or lambda made there (it runs later), the last one, if the function is made after them
        all. None when h2f cannot tell."""
        scope = self.scopes.get(read)
        assignments = scope[read.value] if scope is not None else []
        placed: list[tuple[cst.CSTNode | None, cst.CSTNode]] = []  # (None: a parameter, bound before the body)
        block = None
        for assignment in assignments:
            node = assignment.node
            if type(node) is cst.Param:
                function = self.parents.get(self.parents.get(node))
                statement, in_block = None, getattr(function, "body", None)
            else:
                statement, in_block = (None, None) if node is None else self._statement_of(node)
            block = in_block if block is None else block
            if node is None or in_block is not block or assignment.scope is not assignments[0].scope:
                return None
            placed.append((statement, node))
        if type(block) not in (cst.Module, cst.IndentedBlock) or self._in_a_loop(block):
            return None
        statement, at = self._statement_of(read)
        while at is not None and at is not block:
            statement, at = self._statement_of(at)
        if at is None:
            return None
        order = {id(line): index for index, line in enumerate(block.body)}  # type: ignore[union-attr]
        read_at = order[id(statement)]
        bound = sorted(
            ((-1 if line is None else order[id(line)], node) for line, node in placed), key=lambda item: item[0]
        )
        if scope is not assignments[0].scope and bound[-1][0] >= read_at:
            return None  # (a function made before a binding may run after it)
        before = [node for index, node in bound if index < read_at]
        return before[-1] if before else None

    def _statement_of(self, node: cst.CSTNode) -> tuple[cst.CSTNode, cst.Module | cst.IndentedBlock | None]:
        """The statement of a block (a module's or an indented block's) that holds the original ``node``, and that
        block (None when there is none)."""
        current, parent = node, self.parents.get(node)
        while parent is not None and type(parent) not in (cst.Module, cst.IndentedBlock):
            current, parent = parent, self.parents.get(parent)
        return current, parent  # type: ignore[return-value]

    def _in_a_loop(self, block: cst.CSTNode) -> bool:
        """Whether the original ``block`` may run more than once: in a loop of its function (or module)."""
        current = self.parents.get(block)
        while current is not None and type(current) not in (cst.FunctionDef, cst.Lambda, cst.ClassDef):
            if type(current) in (cst.For, cst.While):
                return True
            current = self.parents.get(current)
        return False

    def generated_class_name(self, function: cst.FunctionDef) -> str:
        """The name of the Linen class a function becomes (``forward_fn`` → ``ForwardFn``), the same every time
        it is asked for, and clashing with no name the module already binds or another generated class."""
        if id(function) not in self._generated_names:
            scope = self.scopes.get(self.module)
            taken = set(self.module_classes) | set(self.functions) | set(self._generated_names.values())
            base = class_name_for(function.name.value)
            candidate, index = base, 1
            while candidate in taken or (scope is not None and candidate in scope):
                index += 1
                candidate = f"{base}{index}"
            self._generated_names[id(function)] = candidate
        return self._generated_names[id(function)]

    def builds_inline(self, function: cst.FunctionDef | cst.Lambda, seen: frozenset[int] = frozenset()) -> bool:
        """Whether the original ``function`` builds submodules or variables inline (so it must be compact), itself
        or through a function of this file it calls (``logits = classifier(x)`` where ``classifier`` builds layers)."""
        for node in self.nodes_in(function.body, cst.Call):
            name = self.haiku_name(node.func)
            if name in HAIKU_MODULE_CLASSES or self.builds_inline_call(node):
                return True
            if name in _PARAMETERLESS_APIS:
                continue  # (Haiku's pooling, rng keys: Flax functions, or gone, once migrated)
            if self.local_module_class(node.func) is not None or self.runs_imported_code(node):
                return True
            called = self.function_named(node.func) if type(node.func) is cst.Name else None
            if called is not None and id(called) not in seen and self.builds_inline(called, seen | {id(function)}):
                return True
        return False

    def calls_unseen_callable(self, function: cst.FunctionDef | cst.Lambda) -> bool:
        """Whether the original ``function`` calls a value bound in a function (one of its parameters or variables,
        or an enclosing function's), not a ``def`` h2f can follow: a module class passed in (``build(Head)``) may
        be what it calls, so it may build submodules inline."""
        for node in self.nodes_in(function.body, cst.Call):
            if type(node.func) is cst.Name and self.function_named(node.func) is None:
                names = self.qualified_names(node.func)
                if names and all("<locals>" in name for name in names):
                    return True
        return False

    def runs_imported_code(self, node: cst.Call) -> bool:
        """Whether the original call runs a function or class imported from a module other than JAX's, NumPy's
        or the standard library's few: it may build Haiku modules (a model class another file defines)."""
        # this file's functions and classes are bare names, a local value's methods ``f.<locals>.x.sum``
        imported = [name for name in self.qualified_names(node.func) if "." in name and "<locals>" not in name]
        return not all(name.startswith(_PARAMETERLESS_MODULES) for name in imported)

    def may_create_params(self, function: cst.CSTNode, imported: bool = True) -> bool:
        """Whether running the original ``function`` (a transformed function, a method) may create parameters:
        False only when every call in it, and in the functions and module classes of this file it calls, is
        known to create none (array code, ``hk.get_state``/``set_state``, ``hk.next_rng_key``...). Not
        ``imported``: taking the code of other libraries it runs (:meth:`runs_imported_code`) to create none."""
        cache = self._creates_params if imported else self._creates_params_alone
        return self._remembered(cache, function, lambda node: self._reaches_params(node, imported))  # type: ignore[no-any-return]

    def params_unknown(self, function: cst.CSTNode) -> bool:
        """Whether only code of another library that the original ``function`` runs may create its parameters (a
        graph network of jraph's calling back array code, say): whether it has any is then unknown."""
        return self.may_create_params(function) and not self.may_create_params(function, imported=False)

    def _reaches_params(self, function: cst.CSTNode, imported: bool) -> bool:
        """:meth:`may_create_params`: whether ``function`` or a function it reaches through calls creates
        parameters in its own code (each function looked at once, however many paths lead to it)."""
        pending = [function]
        reached = {id(function)}
        while pending:
            creates, called = self._own_params(pending.pop(), imported)
            if creates:
                return True
            for callee in called:
                if id(callee) not in reached:
                    reached.add(id(callee))
                    pending.append(callee)
        return False

    def _own_params(self, function: cst.CSTNode, imported: bool) -> tuple[bool, list[cst.CSTNode]]:
        """Whether the code of the original ``function`` itself may create parameters (:meth:`may_create_params`,
        calls of this file's functions and module classes not followed), and if not, the functions and module
        class methods of this file it calls or passes on (remembered: several functions call the same ones)."""
        key = (id(function), imported)
        found = self._own_params_cache.get(key)
        if found is None:
            found = self._scan_params(function, imported)
            if id(function) in self._positions:  # (only an original node keeps its id: see :meth:`_remembered`)
                self._own_params_cache[key] = found
        return found

    def _scan_params(self, function: cst.CSTNode, imported: bool) -> tuple[bool, list[cst.CSTNode]]:
        called: list[cst.CSTNode] = []
        for node in self.subtree(function):
            if type(node) is cst.Name:  # a function or module class of this file, called or passed on
                module = self.local_module_class(node)
                if module is not None and (module.local_base is not None or module.haiku_base != "haiku.Module"):
                    return True, []  # what a base builds is not followed
                if module is not None:
                    called.extend(module.methods.values())
                else:
                    function_called = self.function_named(node)
                    if function_called is not None:  # (most names are neither)
                        called.append(function_called)
            if type(node) is not cst.Call or self.local_module_class(node.func) is not None:
                continue
            name = self.haiku_name(node.func)
            if name is not None:
                if name not in _PARAMETERLESS_APIS and not (
                    name == "haiku.Sequential" and self._sequential_items_followed(node)
                ):
                    return True, []
                continue
            if type(node.func) is cst.Name and self.function_named(node.func) is not None:
                continue
            if self.builds_imported_module(node) or imported and self.runs_imported_code(node):
                return True, []  # (a module class of the run is a Haiku module: taken to create parameters)
        return False, called

    def _sequential_items_followed(self, node: cst.Call) -> bool:
        """Whether every layer of the original ``hk.Sequential(...)`` call is in its literal list, where
        :meth:`may_create_params` sees it: a call or lambda, a function or module class of this file, or a name
        from JAX, NumPy or the standard library (``jax.nn.relu``). The container itself creates no parameters."""
        layers = node.args[0].value if node.args and node.args[0].keyword in (None,) else None
        layers = next((arg.value for arg in node.args if arg.keyword and arg.keyword.value == "layers"), layers)
        if not isinstance(layers, (cst.List, cst.Tuple)):
            return False
        for element in layers.elements:
            item = element.value
            if isinstance(element, cst.StarredElement) or not isinstance(
                item, (cst.Call, cst.Lambda, cst.Name, cst.Attribute)
            ):
                return False
            if isinstance(item, cst.Name) and (self.function_named(item) or self.local_module_class(item)):
                continue
            if isinstance(item, (cst.Name, cst.Attribute)):
                names = self.qualified_names(item)
                if not names or not all(name.startswith(_PARAMETERLESS_MODULES) for name in names):
                    return False
        return True

    def builds_inline_call(self, node: cst.Call) -> bool:
        """Whether the original call is a Haiku function that builds variables or submodules where it runs."""
        return self.haiku_name(node.func) in _INLINE_BUILDERS

    def local_names(self, function: cst.FunctionDef) -> set[str]:
        """Names bound inside ``function``'s own scope (its parameters and local assignments)."""
        first = function.body.body[0] if function.body.body else None
        scope = self.scopes.get(first) if first is not None else None
        if scope is None:
            return {param.name.value for param in function.params.params}
        return {assignment.name for assignment in scope.assignments if assignment.scope is scope}

    def in_loop(self, node: cst.CSTNode, boundary: cst.CSTNode) -> bool:
        """Whether the original ``node`` runs repeatedly (loop, comprehension, nested function) below ``boundary``;
        a lambda ``hk.remat``/``hk.vmap`` runs where it is written (``hk.remat(lambda x: ...)(x)``) runs once."""
        current = self.parents.get(node)
        while current is not None and current is not boundary:
            if type(current) in _REPEATED and not self._run_where_written(current):
                return True
            current = self.parents.get(current)
        return False

    def _run_where_written(self, node: cst.CSTNode) -> bool:
        """Whether ``node`` is a lambda that ``hk.remat``/``hk.vmap`` runs once: where it is written, or through
        the one call of the name it is bound to."""
        argument = self.parents.get(node) if isinstance(node, cst.Lambda) else None
        transform = self.parents.get(argument) if isinstance(argument, cst.Arg) else None
        if not (isinstance(transform, cst.Call) and transform.args[0] is argument):
            return False
        if self.haiku_name(transform.func) not in LIFTED_TRANSFORMS:
            return False
        site = self.parents.get(transform)
        if isinstance(site, cst.Assign) and len(site.targets) == 1 and isinstance(site.targets[0].target, cst.Name):
            return len(self.call_sites(site.targets[0].target) or []) == 1  # ``f = hk.remat(lambda ...)``, one ``f(x)``
        return self.immediate_call(transform) is not None

    def inside(self, node: cst.CSTNode, kinds: tuple[type[cst.CSTNode], ...], boundary: cst.CSTNode) -> bool:
        """Whether an ancestor of the original ``node`` below ``boundary`` is one of ``kinds``."""
        current = self.parents.get(node)
        while current is not None and current is not boundary:
            if isinstance(current, kinds):
                return True
            current = self.parents.get(current)
        return False

    def constructor_of(self, callee: cst.BaseExpression) -> cst.Call | None:
        """The constructor call that made the object ``callee`` names (``hk.BatchNorm(...)`` for ``self.bn``)."""
        if type(callee) is cst.Call:
            return callee
        if type(callee) is not cst.Name and not is_self_attribute(callee):
            return None  # (most callees: ``jnp.mean``, ``hk.Linear``)
        return self._remembered(self._constructors, callee, self._constructor_of)  # several rules ask of every call

    def _constructor_of(self, callee: cst.Name | cst.Attribute) -> cst.Call | None:
        if type(callee) is cst.Name:
            value = self._single_value(callee)
            return value if type(value) is cst.Call else None
        stored = self._stored_in_init(callee)  # type: ignore[arg-type]
        if len(stored) == 1 and type(stored[0]) is cst.Call:
            return stored[0]
        return None

    def _stored_in_init(self, attribute: cst.Attribute) -> list[cst.BaseExpression]:
        """The values the ``__init__`` of the module class holding the original ``self.<attribute>`` stores in it
        (``self.<attribute> = value``)."""
        owner = self.enclosing_module_class(attribute)
        if owner is None or owner.init is None:
            return []
        return self._init_stores(owner.init).get(attribute.attr.value, [])

    def stored_attributes(self, init: cst.FunctionDef) -> set[str]:
        """The attributes the original ``__init__`` ``init`` stores in ``self`` (``self.<name> = value``)."""
        return set(self._init_stores(init))

    def _init_stores(self, init: cst.FunctionDef) -> dict[str, list[cst.BaseExpression]]:
        """``self.<name> = value`` statements of the original ``__init__`` ``init``: name → values (found once: every
        rule asks of every ``self.x(...)`` call)."""
        stores = self._init_stores_cache.get(id(init))
        if stores is None:
            stores = self._init_stores_cache[id(init)] = {}
            for statement in self.nodes_in(init, cst.Assign):
                if len(statement.targets) == 1:
                    target = statement.targets[0].target
                    if is_self_attribute(target):
                        stores.setdefault(target.attr.value, []).append(statement.value)  # type: ignore[attr-defined]
        return stores

    def value_origins(self, node: cst.BaseExpression, seen: frozenset[int] = frozenset()) -> list[cst.BaseExpression]:
        """The original expressions whose value ``node`` may hold: followed through a single assignment, a loop
        over a literal sequence (``enumerate``/``zip`` of literals too), an item of a literal container,
        ``x or y``, ``x if c else y``, ``self.x`` set once in ``__init__``, and a parameter of a function or
        module constructor of this file (its default and what each call here passes). An expression followed no
        further (a call, a parameter of a method, a name bound twice) is its own origin."""
        if id(node) in seen or len(seen) > 8:
            return [node]
        seen = seen | {id(node)}
        if isinstance(node, cst.BooleanOperation) and isinstance(node.operator, cst.Or):
            kept = [origin for origin in self.value_origins(node.left, seen) if not is_none(origin)]
            return kept + self.value_origins(node.right, seen)
        if isinstance(node, cst.IfExp):
            return self.value_origins(node.body, seen) + self.value_origins(node.orelse, seen)
        if isinstance(node, cst.Subscript) and isinstance(node.value, cst.Name):
            return self._origins_of_all(literal_items(self._single_value(node.value)), seen) or [node]
        if isinstance(node, cst.Attribute) and is_self_attribute(node):
            stored = self._stored_in_init(node)
            return self.value_origins(stored[0], seen) if len(stored) == 1 else [node]
        if not isinstance(node, cst.Name):
            return [node]
        scope = self.scopes.get(node)
        bindings = [getattr(binding, "node", None) for binding in scope[node.value]] if scope is not None else []
        if len(bindings) != 1 or bindings[0] is None:
            return [node]
        binding = bindings[0]
        if isinstance(binding, cst.Param):
            return self._parameter_origins(binding, seen) or [node]
        value = self._single_value(node)
        if value is not None:
            return self.value_origins(value, seen)
        looped = self._loop_items(binding)
        return self._origins_of_all(looped, seen) or [node]

    def _origins_of_all(self, items: list[cst.BaseExpression] | None, seen: frozenset[int]) -> list[cst.BaseExpression]:
        return [origin for item in items or [] for origin in self.value_origins(item, seen)]

    def _single_value(self, name: cst.Name) -> cst.BaseExpression | None:
        """The value of ``name = value``, the one assignment that binds the original ``name``."""
        scope = self.scopes.get(name)
        bindings = [getattr(binding, "node", None) for binding in scope[name.value]] if scope is not None else []
        if len(bindings) != 1 or type(bindings[0]) is not cst.Name:
            return None
        target = self.parents.get(bindings[0])
        statement = self.parents.get(target) if type(target) is cst.AssignTarget else None
        return statement.value if type(statement) is cst.Assign else None

    def _loop_items(self, target: cst.CSTNode) -> list[cst.BaseExpression] | None:
        """What the loop variable ``target`` (a Name a ``for`` binds) takes, when the loop runs over a literal
        sequence, ``enumerate``/``zip`` of literals, or a literal dict's ``.values()``/``.items()``."""
        path: list[int] = []  # positions of ``target`` in nested tuple targets, outermost first
        current = target
        while True:
            parent = self.parents.get(current)
            if isinstance(parent, cst.Element):
                tuple_node = self.parents.get(parent)
                if not isinstance(tuple_node, (cst.Tuple, cst.List)):
                    return None
                path.insert(0, list(tuple_node.elements).index(parent))
                current = tuple_node
                continue
            if isinstance(parent, (cst.For, cst.CompFor)) and parent.target is current:
                break
            return None
        return self._unpack(parent.iter, path)

    def _unpack(self, iterable: cst.BaseExpression, path: list[int]) -> list[cst.BaseExpression] | None:
        if isinstance(iterable, cst.Name):
            value = self._single_value(iterable)
            return self._unpack(value, path) if value is not None else None
        if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Name) and path:
            args = [arg.value for arg in iterable.args if arg.keyword is None and not arg.star]
            if iterable.func.value == "enumerate" and len(args) == 1 and path[0] == 1:
                return self._unpack(args[0], path[1:])
            if iterable.func.value == "zip" and len(args) == len(iterable.args) and path[0] < len(args):
                return self._unpack(args[path[0]], path[1:])
            return None
        if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Attribute):
            method, container = iterable.func.attr.value, iterable.func.value
            items = container if isinstance(container, cst.Dict) else None
            if isinstance(container, cst.Name):
                items = self._single_value(container)  # type: ignore[assignment]
            if not isinstance(items, cst.Dict) or iterable.args:
                return None
            if method == "values" and not path:
                return literal_items(items)
            if method == "items" and path and path[0] == 1 and len(path) == 1:
                return literal_items(items)
            return None
        return literal_items(iterable) if not path else None

    def _parameter_origins(self, param: cst.Param, seen: frozenset[int]) -> list[cst.BaseExpression] | None:
        """Origins of a parameter of a function of this file (a module class's ``__init__``: its constructions):
        its default and the argument each call passes; None when a call cannot be read or the function is used
        other than called. A module-level class may be built by other files too: the parameter itself stands
        for what they pass."""
        function = self.enclosing(param, cst.FunctionDef)
        if not isinstance(function, cst.FunctionDef) or param.star:
            return None
        owner = self.enclosing_module_class(function)
        if owner is not None and owner.init is function:
            names = [p.name.value for p in (*function.params.posonly_params, *function.params.params)][1:]
            callee: cst.CSTNode = owner.node
        elif owner is None and self.enclosing(function, cst.ClassDef) is None:
            names = [p.name.value for p in (*function.params.posonly_params, *function.params.params)]
            callee = function
        else:
            return None
        names += [p.name.value for p in function.params.kwonly_params]
        scope = self.scopes.get(callee)
        references = [
            access.node
            for binding in (scope[callee.name.value] if scope is not None else [])
            if getattr(binding, "node", None) is callee
            for access in binding.references
        ]
        origins = [param.default] if param.default is not None else []
        if callee is not function and self.parents.get(callee) is self.module:
            origins.append(param)  # what the constructions of other files pass (a module-level class is importable)
        for reference in references:
            site = self._call_of(reference)
            if site is None:
                return None  # passed on, decorated, subclassed: calls out of sight
            bound = bind_arguments(site, names)
            if bound is None:
                return None
            if param.name.value in bound:
                origins.extend(self.value_origins(bound[param.name.value].value, seen))
        return origins or None

    def call_sites(self, target: cst.Name | cst.FunctionDef) -> list[cst.Call] | None:
        """The calls of what the original ``target`` binds (``f = ...`` or ``def f``, then ``f(x)``) when that is
        the name's one binding in its scope and every use of it, after it, calls it; None otherwise (passed on,
        rebound)."""
        name = target.value if isinstance(target, cst.Name) else target.name.value
        scope = self.scopes.get(target)
        bindings = scope[name] if scope is not None and name in scope else []
        if len(bindings) != 1 or bindings[0].node is not target:
            return None
        bound_at = self.span(target)
        sites = []
        for access in bindings[0].references:
            site = self.parents.get(access.node)
            span = self.span(access.node)
            if not isinstance(site, cst.Call) or site.func is not access.node or not (bound_at and span):
                return None
            if span[0] < bound_at[0]:
                return None
            sites.append(site)
        return sites

    def immediate_call(self, node: cst.CSTNode) -> cst.Call | None:
        """The call that calls the original ``node`` where it stands (``f`` of ``f(x)``, ``hk.Linear(2)`` of
        ``hk.Linear(2)(x)``), or None."""
        parent = self.parents.get(node)
        return parent if isinstance(parent, cst.Call) and parent.func is node else None

    def _call_of(self, reference: cst.CSTNode) -> cst.Call | None:
        """The call that passes its arguments to the function the original ``reference`` names: ``f(...)``, or
        ``jax.grad(f)(...)`` and the like, which pass them on in the same places; None otherwise."""
        site = self.parents.get(reference)
        if (called := self.immediate_call(reference)) is not None:
            return called
        wrapper = self.parents.get(site) if isinstance(site, cst.Arg) and site.keyword is None else None
        if (
            isinstance(wrapper, cst.Call)
            and wrapper.args[0] is site
            and _ARGUMENT_KEEPERS & self.qualified_names(wrapper.func)
        ):
            return self.immediate_call(wrapper)
        return None

    def positional_name(self, call: cst.Call) -> cst.Arg | None:
        """The argument of the original ``call``, a construction of a module class of this file or one imported
        from another file of the run, that passes the module's ``name`` by position (``Block(8, "block_a")``),
        or None."""
        info = self.local_module_class(call.func)
        if info is not None:
            index = info.name_position()
        elif type(call.func) is cst.Name and call.func.value in self.imported_module_classes:
            index = self.imported_module_classes[call.func.value].name_position
        else:
            return None
        positional = [arg for arg in call.args if arg.keyword is None]
        if index is None or any(arg.star for arg in positional):
            return None
        return positional[index] if index < len(positional) else None

    def layer_of(self, callee: cst.BaseExpression, api: str) -> cst.Call | None:
        """The construction of the Haiku layer ``api`` (``haiku.BatchNorm``) that ``callee`` names, or None."""
        constructor = self.constructor_of(callee)
        return constructor if constructor is not None and self.haiku_name(constructor.func) == api else None

    def calls_of(self, construction: cst.Call) -> list[cst.Call]:
        """The calls of the module the original ``construction`` builds that :meth:`constructor_of` traces back
        to it (inline, through a local variable or a ``self`` attribute set in ``__init__``)."""
        return self._calls_by_construction.get(id(construction), [])

    def calls_untraced(self, construction: cst.Call) -> bool:
        """Whether the module the original ``construction`` builds may be called where :meth:`calls_of` does not
        see it: kept other than called at once or assigned to a name or ``self`` attribute, or that name or
        attribute read other than as the callee of a call traced to it (put in a tuple, passed on, returned)."""
        if self.immediate_call(construction) is not None:
            return False
        parent = self.parents.get(construction)
        if not (isinstance(parent, cst.Assign) and len(parent.targets) == 1 and parent.value is construction):
            return True
        target = parent.targets[0].target
        if isinstance(target, cst.Name):
            where: cst.CSTNode | None = self.enclosing(parent, cst.FunctionDef) or self.module
            reads: list[cst.CSTNode] = [node for node in self.nodes_in(where, cst.Name) if node.value == target.value]
        elif is_self_attribute(target):
            where = self.enclosing(parent, cst.ClassDef)
            name = target.attr.value  # type: ignore[attr-defined]
            reads = [
                node
                for node in self.nodes_in(where, cst.Attribute)  # type: ignore[arg-type]
                if is_self_attribute(node) and node.attr.value == name
            ]
        else:
            return True
        traced = {id(site.func) for site in self.calls_of(construction)}
        return any(id(read) not in traced for read in reads if read is not target)

    @functools.cached_property
    def _calls_by_construction(self) -> dict[int, list[cst.Call]]:
        index: dict[int, list[cst.Call]] = {}
        for site in self.nodes_of(cst.Call):
            constructor = self.constructor_of(site.func)  # type: ignore[attr-defined]
            if constructor is not None:
                index.setdefault(id(constructor), []).append(site)  # type: ignore[arg-type]
        return index

    # ----- building ------------------------------------------------------------------------------------

    def _find_imports(self) -> None:
        for statement in self._import_statements():
            if isinstance(statement, cst.Import):
                for alias in statement.names:
                    dotted = _dotted(alias.name)
                    if dotted == "haiku" or dotted.startswith("haiku."):
                        asname = alias.asname.name.value if alias.asname else None  # type: ignore[union-attr]
                        self.haiku_imports.append(ImportAlias(dotted, None, asname))
                        self.haiku_aliases.add(asname or dotted.split(".")[0])
            elif isinstance(statement, cst.ImportFrom) and statement.relative:
                self._add_relatively_imported_transforms(statement)
            elif isinstance(statement, cst.ImportFrom) and statement.module is not None:
                module = _dotted(statement.module)
                if module != "haiku" and not module.startswith("haiku."):
                    self._add_imported_transforms(statement, functools.partial(import_keys, self.path, module))
                    continue
                if isinstance(statement.names, cst.ImportStar):
                    continue
                for alias in statement.names:
                    obj = _dotted(alias.name)
                    asname = alias.asname.name.value if alias.asname else None  # type: ignore[union-attr]
                    self.haiku_imports.append(ImportAlias(module, obj, asname))
                    self.haiku_aliases.add(asname or obj)

    @functools.cached_property
    def _exported_transform_names(self) -> frozenset[str]:
        """The names the files of the run export transforms (and factories) by."""
        return frozenset(exported_name(key) for key, exported in self.project.items() if exported.is_transform)

    def _find_haiku_aliases(self) -> None:
        """``I = hk.initializers`` (or ``Linear = hk.Linear``), bound once at module level: ``I.Constant`` is then
        ``haiku.initializers.Constant`` wherever it is read, as if ``I`` had been imported so."""
        for statement in self.module.body if self.haiku_aliases else []:
            assign = statement.body[0] if type(statement) is cst.SimpleStatementLine else None
            if not (
                type(assign) is cst.Assign
                and len(assign.targets) == 1
                and type(assign.targets[0].target) is cst.Name
                and type(assign.value) in (cst.Name, cst.Attribute)
            ):
                continue
            name, target = self.haiku_name(assign.value), assign.targets[0].target
            scope = self.scopes.get(target)
            bindings = list(scope[target.value]) if scope is not None and name is not None else []
            if len(bindings) == 1 and bindings[0].node is target:
                self._resolver.aliases[id(bindings[0])] = frozenset({name})  # type: ignore[arg-type]
                self.haiku_aliases.add(target.value)

    def _find_haiku_classes_read_through_modules(self) -> None:
        """``blocks.Block`` after ``import blocks`` (or ``import pkg.blocks as b``, ``from pkg import blocks``),
        where another file of the run keeps ``Block`` Haiku (:class:`KeptClass`)."""
        names = frozenset(exported_name(key) for key, exported in self.project.items() if not exported.migrated)
        for node, module, exported in self._read_through_modules(names, lambda exported: not exported.migrated):
            self.haiku_classes_read_through_modules[node] = (exported, module)

    def _read_through_modules(
        self, names: frozenset[str], wanted: Callable[[ExportedTransform], bool]
    ) -> Iterator[tuple[cst.Attribute, str, ExportedTransform]]:
        """Each ``models.model`` (one of ``names`` read as an attribute of a module the file imports) where the
        project index holds a ``wanted`` export under that module: the attribute, the module, the export."""
        for node in self.nodes_of(cst.Attribute) if names else []:
            if node.attr.value not in names:  # type: ignore[attr-defined]
                continue
            for qualified in self.qualified_names(node):
                module, _, name = qualified.rpartition(".")
                exports = [self.project.get(key) for key in import_keys(self.path, module, name)]
                exported = next((found for found in exports if found is not None and wanted(found)), None)
                if exported is not None:
                    yield node, module, exported  # type: ignore[misc]
                    break

    def imported_migrated_names(self) -> frozenset[str]:
        """The names this file imports from other files of the run that the migration of those files makes Flax
        (transforms and their factories, initializers, module classes)."""
        transforms = {
            transform.name for transform in self.transforms.values() if type(transform.binding) is cst.ImportAlias
        }
        return (
            frozenset(self.imported_module_classes)
            | self.imported_initializers
            | set(self.imported_factories)
            | transforms
        )

    def reads_of(self, name: str, binding: cst.CSTNode) -> list[cst.CSTNode]:
        """The original nodes that read the ``name`` the original ``binding`` binds (a ``def``, a class, an
        import), in the scope it binds it in (the module's, a function's); for a star import (``from blocks
        import *``), the reads of ``name`` that nothing else binds."""
        if _is_star_import(binding):
            return [node for node in self.nodes_of(cst.Name) if node.value == name and self._resolver.unbound(node)]
        scope = self.scopes.get(binding)
        assignments = scope[name] if scope is not None else []
        return [
            access.node for assignment in assignments if assignment.node is binding for access in assignment.references
        ]

    def kept_classes(self) -> list[KeptClass]:
        """The module classes other files of the run keep Haiku that this file reaches, with their reads."""
        found = [
            KeptClass(exported, imported_module(statement), exported.name, self.reads_of(name, statement))
            for (name, statement), exported in self.imported_haiku_classes.items()
        ]
        found += [
            KeptClass(exported, module, exported.name, [read])
            for read, (exported, module) in self.haiku_classes_read_through_modules.items()
        ]
        found += [
            KeptClass(
                exported,
                module,
                f"{node.name.value} (a subclass of {exported.name})",
                self.reads_of(node.name.value, node),
            )
            for node, (exported, module) in self.haiku_class_subclasses.items()
        ]
        return found

    def _find_exports_read_through_modules(self) -> None:
        """``models.model.init(...)`` after ``from pkg import models`` (or ``import pkg.models as M``): a
        transform another file of the run migrates, read as an attribute of its module, which the call-site
        rewrites do not follow (they follow ``from pkg.models import model``)."""
        for node, _, _ in self._read_through_modules(self._exported_transform_names, lambda found: found.is_transform):
            self.exports_read_through_modules.append(node)

    def _add_relatively_imported_transforms(self, statement: cst.ImportFrom) -> None:
        """``from .models import model`` (in ``pkg/train.py``): the module is the file ``pkg/models.py``."""
        if self.path is None or statement.module is None or not self.project:
            return
        path, dots, module = self.path, len(statement.relative), _dotted(statement.module)
        self._add_imported_transforms(statement, lambda name: [relative_import_key(path, dots, module, name)])

    def _add_imported_transforms(self, statement: cst.ImportFrom, keys: Callable[[str], list[str]]) -> None:
        """``from models import model`` where another file of the run transforms ``model`` (``keys`` lists where
        each imported name may be in the project index, the likeliest first)."""
        if not self.project:
            return
        if _is_star_import(statement):
            prefixes = star_prefixes(keys("*"))
            for key, exported in self.project.items() if prefixes else []:
                name = exported_name(key)
                if not exported.migrated and key.startswith(prefixes) and not name.startswith("_"):
                    self.imported_haiku_classes[name, statement] = exported
            return
        for alias in statement.names:
            candidates = keys(_dotted(alias.name))
            exported = next((found for key in candidates if (found := self.project.get(key)) is not None), None)
            if exported is None:
                if _dotted(alias.name) in self._exported_transform_names and not defines(candidates[-1]):
                    self.unfollowed_imports.append(alias)  # (a module that binds the name itself is no re-export)
                continue
            local = alias.asname.name.value if alias.asname else _dotted(alias.name)  # type: ignore[union-attr]
            if exported.kind == MODULE_CLASS_EXPORT:
                self.imported_module_classes[local] = exported
                continue
            if not exported.migrated:
                self.imported_haiku_classes[local, statement] = exported
                continue
            if exported.factory:
                self.imported_factories[local] = exported
                continue
            if exported.kind == INITIALIZER_EXPORT:
                self.imported_initializers.add(local)
                continue
            transform = Transform(
                local,
                exported.kind,
                exported.with_state,
                exported.apply_rng,
                None,
                None,
                alias,
                exported.methods,
                exported.rng_streams,
                exported.collections,
            )
            self._register(transform, alias)

    def builders(self, reads: list[cst.CSTNode], kept: Collection[int] = ()) -> list[cst.CSTNode]:
        """The original ``reads`` of a class that may build or subclass it (not in an annotation, nor as what
        ``isinstance``/``issubclass`` test against), outside the statements ``kept`` (ids of those a ``# h2f:
        skip`` leaves as written)."""
        return [read for read in reads if not _kept_or_inspected([read, *self.ancestors(read)], kept)]

    def builders_of_import(
        self, name: str, line: int, column: int, star: Collection[str] = ()
    ) -> list[cst.CSTNode] | None:
        """The :meth:`builders` among the reads of what a module-level import brings in: ``name`` imported by the
        alias that starts at ``line``, ``column`` (1-based; ``from blocks import Block``) or read through its module
        there (``blocks.Block``); or, for ``name`` ``*`` (``from blocks import *``), the names ``star``. None when
        no such import or read is there."""
        if name == "*":
            statement = next((node for node in self._import_statements() if _is_star_import(node)), None)
            return (
                self.builders([read for each in star for read in self.reads_of(each, statement)]) if statement else None
            )
        positions = StartPositions(self.module)
        candidates = [
            node
            for node in self.nodes_of(cst.ImportAlias, cst.Attribute)
            if type(node) is cst.ImportAlias or node.attr.value == name  # type: ignore[attr-defined]
        ]
        node = next((node for node in candidates if positions.start(node) == (line, column)), None)
        if type(node) is cst.Attribute:
            return self.builders([node])
        statement = self.parents.get(node) if node is not None else None
        if type(statement) is not cst.ImportFrom:
            return None
        return self.builders(self.reads_of(node.evaluated_alias or node.evaluated_name, statement))  # type: ignore[union-attr]

    def rewritten_builders(
        self, reads: list[cst.CSTNode], migrated: cst.Module, kept: Collection[int] = ()
    ) -> list[cst.CSTNode]:
        """The :meth:`builders` among ``reads`` in the top-level statements the migration (to ``migrated``)
        rewrote."""
        unchanged = set(map(id, migrated.body))
        return [read for read in self.builders(reads, kept) if id(self._top_level_statement(read)) not in unchanged]

    def _top_level_statement(self, node: cst.CSTNode) -> cst.CSTNode:
        """The statement of the module's body that holds the original ``node``."""
        chain = [node, *self.ancestors(node)]  # (the last one is the module)
        return chain[-2]

    def module_level_transforms(self) -> list[Transform]:
        """The transforms bound to names at the top level of the module (what other files can import)."""
        top = set(map(id, self.module.body))
        found = []
        for transform in self.transforms.values():
            binding = transform.binding
            if isinstance(binding, cst.Assign):
                binding = self.parents.get(binding)  # Assign -> SimpleStatementLine
            if binding is not None and id(binding) in top:
                found.append(transform)
        return found

    def imported_elsewhere(self, module_class: ModuleClass) -> bool:
        """Whether another file of the run imports the module class by name (:data:`MODULE_CLASS_EXPORT`)."""
        if self.path is None:
            return False
        exported = self.project.get(file_key(module_path(Path(self.path)), module_class.name))
        return exported is not None and exported.kind == MODULE_CLASS_EXPORT

    def module_level_initializers(self) -> list[str]:
        """Names bound at the top level to a Haiku initializer the migration translates there
        (``W_INIT = hk.initializers.VarianceScaling(2.0)``): other files import a Flax initializer."""
        from h2f.rules.initializers import untranslatable

        found = []
        for statement in self.module.body:
            assign = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
            if (
                isinstance(assign, cst.Assign)
                and len(assign.targets) == 1
                and isinstance(assign.targets[0].target, cst.Name)
                and isinstance(assign.value, cst.Call)
                and (name := self.haiku_name(assign.value.func)) in INITIALIZERS
                and untranslatable(assign.value, name) is None  # type: ignore[arg-type]
            ):
                found.append(assign.targets[0].target.value)
        return found

    def imported_initializer(self, name: cst.Name) -> bool:
        """Whether the original ``name`` is bound only by importing another file's translated initializer."""
        scope = self.scopes.get(name)
        bindings = [getattr(binding, "node", None) for binding in scope[name.value]] if scope is not None else []
        return (
            name.value in self.imported_initializers and len(bindings) == 1 and isinstance(bindings[0], cst.ImportFrom)
        )

    def module_level_factories(self) -> list[tuple[str, Transform]]:
        """The functions at the top level of the module that return a transform (``def make_model(): return
        hk.transform(forward)``; what other files can import and call), each with the transform it returns."""
        found = []
        for statement in self.module.body:
            if not isinstance(statement, cst.FunctionDef) or self._returned_transform(statement) is None:
                continue
            returned = [
                transform
                for transform in self.transforms.values()
                if transform.binding is not None and self.enclosing(transform.binding, cst.FunctionDef) is statement
            ]
            if returned:
                found.append((statement.name.value, returned[0]))
        return found

    def _import_statements(self) -> list[cst.Import | cst.ImportFrom]:
        return self.nodes_of(cst.Import, cst.ImportFrom)  # type: ignore[return-value]

    @functools.cached_property
    def _by_type(self) -> dict[type, list[cst.CSTNode]]:
        index: dict[type, list[cst.CSTNode]] = {}
        for node in self.nodes:
            index.setdefault(type(node), []).append(node)
        return index

    @functools.cached_property
    def _def_names(self) -> frozenset[str]:
        """The names of the file's ``def`` statements, at any depth."""
        return frozenset(node.name.value for node in self.nodes_of(cst.FunctionDef))  # type: ignore[attr-defined]

    def nodes_of(self, *kinds: type[cst.CSTNode]) -> list[cst.CSTNode]:
        """Every node of exactly the given concrete kinds (``cst.Call``, not ``cst.BaseExpression``), in source
        order: from an index by type built once, where a pass over all nodes tests each one's type."""
        if len(kinds) == 1:
            return list(self._by_type.get(kinds[0], ()))
        found = [node for kind in kinds for node in self._by_type.get(kind, ())]
        found.sort(key=lambda node: self._positions[id(node)])
        return found

    def qualified_nodes_of(self, *kinds: type[cst.CSTNode]) -> list[cst.CSTNode]:
        """Every node of the given kinds, in source order."""
        return [node for node in self.nodes if isinstance(node, kinds)]

    def _find_definitions(self) -> None:
        for node in self.nodes_of(cst.ClassDef, cst.FunctionDef, cst.Assign, cst.Call):
            if type(node) is cst.ClassDef:
                self._add_class(node)
            elif type(node) is cst.FunctionDef:
                self.functions.setdefault(node.name.value, node)
                self._add_decorated_transform(node)
            elif type(node) is cst.Assign:
                self._add_assigned_transform(node)
            elif type(node) is cst.Call and self.haiku_name(node.func) is not None:  # (the three note Haiku calls)
                self._add_unbound_transform(node)
                self._add_splat_configs(node)
                self._note_collections_and_streams(node)

    def _add_class(self, node: cst.ClassDef) -> None:
        haiku_base = local_base = None
        for base in node.bases:
            name = self.haiku_name(base.value)
            if name is not None and (name == "haiku.Module" or name in HAIKU_LAYERS):
                haiku_base = name
            elif isinstance(base.value, cst.Name) and base.value.value in self.module_classes:
                local_base = base.value.value
        if haiku_base is None and local_base is None:
            self._add_haiku_class_subclass(node)
            return
        methods = {
            statement.name.value: statement for statement in node.body.body if isinstance(statement, cst.FunctionDef)
        }
        self.module_classes[node.name.value] = ModuleClass(
            node.name.value, node, haiku_base, local_base, methods.get("__init__"), methods
        )

    def _add_haiku_class_subclass(self, node: cst.ClassDef) -> None:
        """``class MyBlock(Block)`` where another file of the run keeps ``Block`` Haiku: so is ``MyBlock``."""
        subclasses = {subclass.name.value: kept for subclass, kept in self.haiku_class_subclasses.items()}
        for base in node.bases:
            kept = self.haiku_classes_read_through_modules.get(base.value)  # type: ignore[call-overload]
            if type(base.value) is cst.Name:
                kept = self._imported_haiku_class(base.value) or subclasses.get(base.value.value)
            if kept is not None:
                self.haiku_class_subclasses[node] = kept
                return

    def _imported_haiku_class(self, name: cst.Name) -> tuple[ExportedTransform, str] | None:
        """The module class another file of the run keeps Haiku that the original ``name`` reads through an
        import (:attr:`imported_haiku_classes`), and the module it is imported from."""
        scope = self.scopes.get(name)
        bindings = [assignment.node for assignment in scope[name.value]] if scope is not None else []
        if self._resolver.unbound(name):
            bindings = [statement for statement in self._import_statements() if _is_star_import(statement)]
        for binding in bindings:
            exported = self.imported_haiku_classes.get((name.value, binding))  # type: ignore[arg-type]
            if exported is not None:
                return exported, imported_module(binding)  # type: ignore[arg-type]
        return None

    def _transform_of(self, expr: cst.BaseExpression) -> tuple[str, bool, bool, cst.BaseExpression] | None:
        """Unwrap ``hk.without_apply_rng(hk.transform(f))`` into (kind, with_state, apply_rng, f)."""
        apply_rng = True
        while isinstance(expr, cst.Call) and self.haiku_name(expr.func) == WITHOUT_APPLY_RNG and expr.args:
            apply_rng = False
            expr = expr.args[0].value
        if not isinstance(expr, cst.Call) or not expr.args:
            return None
        found = TRANSFORMS.get(self.haiku_name(expr.func) or "")
        if found is None:
            return None
        for arg in expr.args[1:]:
            if arg.keyword is not None and arg.keyword.value == "apply_rng" and m.matches(arg.value, m.Name("False")):
                apply_rng = False
        kind, with_state = found
        return kind, with_state, apply_rng, expr.args[0].value

    def _add_assigned_transform(self, node: cst.Assign) -> None:
        if len(node.targets) != 1 or type(node.targets[0].target) is not cst.Name:
            return
        found = self._transform_of(node.value)
        if found is None:
            return
        kind, with_state, apply_rng, function = found
        name = node.targets[0].target.value
        function_name = function.value if isinstance(function, cst.Name) else None
        definition: cst.FunctionDef | cst.Lambda | None
        if isinstance(function, cst.Lambda):
            definition = function
        else:
            definition = self.function_named(function) if isinstance(function, cst.Name) else None
        if definition is None:
            self._note_wrapped_functions(function)
        if definition is None and isinstance(function, cst.Name):
            self._note_passed_functions(function)
        transform = Transform(name, kind, with_state, apply_rng, definition, function_name, node)
        self._register(transform, node.targets[0].target)

    def _note_wrapped_functions(self, transformed: cst.BaseExpression) -> None:
        """Note in :attr:`wrapped_functions` this file's functions that ``transformed`` (what a transform takes, an
        expression h2f cannot see into: ``functools.partial(forward, ...)``) names: Haiku runs them."""
        self.wrapped_functions.update(
            (id(found), transformed)
            for n in self.subtree(transformed)
            if isinstance(n, cst.Name) and (found := self.function_named(n)) is not None
        )

    def _note_passed_functions(self, parameter: cst.Name) -> None:
        """Note in :attr:`passed_functions` the functions of this file passed as the ``parameter`` a transform reads:
        where its function is called, or its class built when it is ``__init__``'s (by keyword or position)."""
        param = self.binding_read(parameter)
        function = self.parents.get(self.parents.get(param)) if type(param) is cst.Param else None
        if type(function) is not cst.FunctionDef:
            return
        owner = self.parents.get(self.parents.get(function))
        method = type(owner) is cst.ClassDef
        if method and function.name.value != "__init__":
            return  # (a method is called through an instance h2f does not follow)
        callee = owner.name.value if method else function.name.value  # type: ignore[union-attr]
        names = [each.name.value for each in (*function.params.posonly_params, *function.params.params)]
        for call in self.nodes_of(cst.Call):
            if type(call.func) is not cst.Name or call.func.value != callee:  # type: ignore[attr-defined]
                continue
            bound = bind_arguments(call, names[1:] if method else names)  # type: ignore[arg-type]
            passed = bound.get(parameter.value) if bound is not None else None
            defined = (
                self.function_named(passed.value) if passed is not None and type(passed.value) is cst.Name else None
            )
            if defined is not None:
                self.passed_functions[id(defined)] = call  # type: ignore[assignment]

    def _add_unbound_transform(self, node: cst.Call) -> None:
        """``return hk.transform(f)``: a transform not bound to a name; the call itself is the binding. So is the
        transform unpacked into its two functions (``init, apply = hk.without_apply_rng(hk.transform(f))``), when
        its Linen ``init``/``apply`` can keep Haiku's signatures (no state, no apply rng: ``apply(params, *args)``;
        the transform rule gives its two functions those signatures); any other keeps ``f`` Haiku
        (:attr:`unpacked_functions`). A function h2f cannot see (``functools.partial(f, ...)``, a parameter) stays
        Haiku as it does for a bound transform."""
        parent = self.parents.get(node)
        unpacked = type(parent) is cst.Assign and unpacks_in_two(parent) and parent.value is node  # type: ignore[attr-defined]
        if (type(parent) is cst.Assign and not unpacked) or (
            type(parent) is cst.Arg and self._transform_of(self.parents.get(parent)) is not None
        ):  # type: ignore[arg-type]
            return
        if self.haiku_name(node.func) == WITHOUT_APPLY_RNG and type(parent) is cst.Arg:
            return
        found = self._transform_of(node)
        if found is None:
            return
        kind, with_state, apply_rng, function = found
        if type(function) is cst.Lambda:
            definition: cst.FunctionDef | cst.Lambda | None = function
        else:
            definition = self.function_named(function) if type(function) is cst.Name else None
        if definition is None:  # (registered all the same: the transform rule reports it, left in place)
            self._note_wrapped_functions(function)
            if type(function) is cst.Name:
                self._note_passed_functions(function)
        elif unpacked and type(definition) is cst.FunctionDef and (kind != "transform" or with_state or apply_rng):
            self.unpacked_functions[id(definition)] = node
            return
        elif type(definition) is cst.FunctionDef:
            factory = self.unpacking_factory(node)
            if factory is not None and self._unpacks_a_call_of(factory):
                self.unpacked_functions[id(definition)] = node
                return
        function_name = function.value if type(function) is cst.Name else None  # type: ignore[attr-defined]
        key = f"<{function_name or 'transformed'}@{id(node)}>"
        self._register(Transform(key, kind, with_state, apply_rng, definition, function_name, node), None)

    def unpacking_factory(self, transform: cst.Call) -> cst.FunctionDef | None:
        """The factory that returns ``transform`` (one of :attr:`unpacked_functions`' transforms) to a call that
        unpacks it; None when the transform itself is unpacked."""
        if type(self.parents.get(transform)) is not cst.Return:
            return None
        factory = self.enclosing(transform, cst.FunctionDef)
        return factory if type(factory) is cst.FunctionDef else None

    def _unpacks_a_call_of(self, factory: cst.FunctionDef) -> bool:
        """Whether the file unpacks what a call of ``factory`` returns (``init, apply = make_network()``): the
        transform it returns is then used as its two functions, which Linen's model is not."""
        for name in self.nodes_of(cst.Name):
            call = self.parents.get(name)
            if name.value != factory.name.value or type(call) is not cst.Call or call.func is not name:  # type: ignore[attr-defined]
                continue
            assign = self.parents.get(call)
            if (
                type(assign) is cst.Assign
                and assign.value is call
                and unpacks(assign)
                and self.function_named(name) is factory  # type: ignore[arg-type]
            ):
                return True
        return False

    def _add_typed_transforms(self) -> None:
        """Names typed ``hk.Transformed``/``hk.TransformedWithState`` (parameters, factory results)."""
        kinds = {"haiku.Transformed": False, "haiku.TransformedWithState": True}
        factories: dict[str, tuple[str, bool, bool]] = {}  # function → (kind, with_state, apply_rng) it returns
        for node in self.nodes_of(cst.FunctionDef):
            returned = self._returned_transform(node)
            if returned is not None:
                factories[node.name.value] = returned
            elif node.returns is not None:
                with_state = kinds.get(self.haiku_name(node.returns.annotation) or "")
                if with_state is not None:
                    factories[node.name.value] = ("transform", with_state, True)
        for node in self.nodes_of(cst.Param, cst.Assign):
            name = found = declared = None
            if (
                type(node) is cst.Assign
                and type(node.value) is cst.Call
                and type(node.value.func) is cst.Name
                and node.value.func.value in self.imported_factories
                and unpacks(node)
            ):
                self.unpacked_imported_factories.append(node.value)
                continue
            if type(node) is cst.Param and node.annotation is not None:
                with_state = kinds.get(self.haiku_name(node.annotation.annotation) or "")
                found = ("transform", with_state, True) if with_state is not None else None
                name, declared = node.name.value, node
            elif (
                type(node) is cst.Assign
                and len(node.targets) == 1
                and type(node.targets[0].target) is cst.Name
                and type(node.value) is cst.Call
                and type(node.value.func) is cst.Name
            ):
                found = factories.get(node.value.func.value)  # type: ignore[attr-defined]
                name, declared = node.targets[0].target.value, node.targets[0].target
            imported = (
                self.imported_factories.get(node.value.func.value)  # type: ignore[attr-defined]
                if type(node) is cst.Assign and name is not None and found is None
                else None
            )
            if imported is not None:
                transform = Transform(
                    name,  # type: ignore[arg-type]
                    imported.kind,
                    imported.with_state,
                    imported.apply_rng,
                    None,
                    None,
                    None,
                    imported.methods,
                    imported.rng_streams,
                    imported.collections,
                )
                self._register(transform, declared)
            elif name is not None and found is not None:
                kind, with_state, apply_rng = found
                self._register(Transform(name, kind, with_state, apply_rng, None, None, None), declared)

    def _returned_transform(self, function: cst.FunctionDef) -> tuple[str, bool, bool] | None:
        """``def make_model(): ...; return hk.transform(forward)``: what every ``return`` of it gives. Only transforms
        of this file's functions count: one of a lambda, or of what h2f cannot see (``functools.partial(f)``, a
        parameter), stays Haiku, and so do the calls of what the factory returns."""
        kinds = set()
        for node in self.nodes_in(function.body, cst.Return):
            if self.enclosing(node, cst.FunctionDef) is function:
                found = self._transform_of(node.value) if node.value is not None else None
                if found is None or type(found[3]) is not cst.Name:
                    return None
                definition = self.function_named(found[3])
                if definition is None or id(definition) in self.unpacked_functions:
                    return None  # (a transform h2f leaves as it is: what the factory returns stays Haiku's)
                kinds.add(found[:3])
        return kinds.pop() if len(kinds) == 1 else None

    def _add_decorated_transform(self, node: cst.FunctionDef) -> None:
        kind = None
        with_state = False
        apply_rng = True
        for decorator in node.decorators:
            name = self.haiku_name(decorator.decorator)
            if name in TRANSFORMS:
                kind, with_state = TRANSFORMS[name]
            elif name == WITHOUT_APPLY_RNG:
                apply_rng = False
            else:
                return
        if kind is not None:
            fname = node.name.value
            self._register(Transform(fname, kind, with_state, apply_rng, node, fname, node), node)

    def _note_collections_and_streams(self, node: cst.Call) -> None:
        if self.haiku_name(node.func) == "haiku.dropout" and node.args and isinstance(node.args[0].value, cst.Call):
            self.dropout_keys.add(node.args[0].value)  # pre-order: the dropout call comes before its key
        streams, collections = self._call_features(node)
        self.rng_streams |= streams
        self.collections |= collections

    def _call_features(self, node: cst.Call) -> tuple[set[str], set[str]]:
        """The rng streams and variable collections one original call makes the migrated model use."""
        name = self.haiku_name(node.func)
        if name == "haiku.dropout":
            return {DROPOUT_STREAM}, set()
        if (
            name in {"haiku.next_rng_key", "haiku.maybe_next_rng_key", "haiku.next_rng_keys"}
            and node not in self.dropout_keys
        ):
            return {SAMPLE_STREAM}, set()
        if name == "haiku.BatchNorm":
            return set(), {BATCH_STATS_COLLECTION}
        if name in {"haiku.get_state", "haiku.set_state"}:
            return set(), {STATE_COLLECTION}
        return set(), set()

    def features_of(self, transform: Transform) -> tuple[frozenset[str], frozenset[str]]:
        """The rng streams and collections of the model a transform builds: what its transformed function, the
        module classes it constructs and the local functions it calls use, followed through this file. A
        transform whose function h2f cannot see (typed, imported) gets what it carries or the file's."""
        if transform.rng_streams is not None and transform.collections is not None:
            return transform.rng_streams, transform.collections
        if transform.function is None:
            return frozenset(self.rng_streams), frozenset(self.collections)
        key = id(transform.function)  # an original node: its id is its own for the whole run
        if key not in self._features:
            self._features[key] = self._model_features(transform.function)
        return self._features[key]

    def _model_features(self, function: cst.CSTNode) -> tuple[frozenset[str], frozenset[str]]:
        """:meth:`features_of` a transformed function, followed through this file."""
        streams: set[str] = set()
        collections: set[str] = set()
        seen: set[int] = set()
        regions: list[cst.CSTNode] = [function]
        while regions:
            region = regions.pop()
            if id(region) in seen:
                continue
            seen.add(id(region))
            for node in self.nodes_in(region, cst.Call):
                more_streams, more_collections = self._call_features(node)
                streams |= more_streams
                collections |= more_collections
                module_class = self.local_module_class(node.func)
                if module_class is None and type(node.func) is cst.Name:
                    function = self.function_named(node.func)
                    if function is not None:
                        regions.append(function)
                while module_class is not None:  # the class and its local bases
                    regions.append(module_class.node)
                    module_class = self.module_classes.get(module_class.local_base or "")
        return frozenset(streams), frozenset(collections)

    def _add_splat_configs(self, node: cst.Call) -> None:
        """Remember dict literals that are splatted into Haiku layer constructors (checked once all are seen)."""
        layer = self.is_haiku_layer_call(node)
        if layer is None:
            return
        for arg in node.args:
            if arg.star == "**" and isinstance(arg.value, cst.Name):
                literal = self.dict_literal_bound_to(arg.value)
                if literal is not None:
                    self._splat_candidates.setdefault(literal, set()).add(layer)

    def _check_splat_configs(self) -> None:
        """Keep the configuration dicts whose keys can be renamed without changing anything else: every key is
        a constant the layer's rename table knows, and the dict goes nowhere but into ``**`` of that one layer."""
        for literal, layers in self._splat_candidates.items():
            if len(layers) != 1:
                continue
            layer = next(iter(layers))
            keys = config_keys(literal)
            if keys is None or not set(keys) <= set(LAYERS[layer].args):
                continue
            statement = self.parents.get(literal)
            target = statement.targets[0].target if isinstance(statement, cst.Assign) else None
            scope = self.scopes.get(target) if target is not None else None
            if scope is None or not isinstance(target, cst.Name):
                continue
            references = [reference.node for assignment in scope[target.value] for reference in assignment.references]
            if all(self._splatted_into(reference, layer) for reference in references):
                self.splat_configs[literal] = layer

    def _splatted_into(self, reference: cst.CSTNode, layer: str) -> bool:
        arg = self.parents.get(reference)
        call = self.parents.get(arg) if arg is not None else None
        return (
            isinstance(arg, cst.Arg)
            and arg.star == "**"
            and call is not None
            and self.is_haiku_layer_call(call) == layer
        )

    def dict_literal_bound_to(self, name: cst.Name) -> cst.CSTNode | None:
        """The dict literal (or ``dict(...)`` call) that ``name`` is bound to, when it is bound exactly once."""
        value = self._single_value(name)
        if isinstance(value, cst.Dict) or (isinstance(value, cst.Call) and m.matches(value.func, m.Name("dict"))):
            return value
        return None

    def _find_apply_aliases(self) -> None:
        for node in self.nodes_of(cst.Assign, cst.Arg):
            if type(node) is cst.Assign and len(node.targets) == 1:
                transform = self.apply_of(node.value)
                target = node.targets[0].target
                initializer = self.method_of(node.value, "init")
                if initializer is not None and type(target) is cst.Name:
                    self._aliases[target] = ("init", initializer, None)
                if transform is None:
                    continue
                if type(target) is cst.Name and transform.kind == "transform":
                    self._aliases[target] = ("apply", transform, None)
                elif type(target) is cst.Tuple and transform.kind == "multi_transform" and transform.methods:
                    names = [element.value for element in target.elements]
                    if len(names) == len(transform.methods) and all(type(n) is cst.Name for n in names):
                        for name, method in zip(names, transform.methods):
                            self._aliases[name] = ("apply", transform, method)
            elif type(node) is cst.Arg and node.keyword is not None and node.keyword.value == "apply_fn":
                transform = self.apply_of(node.value)
                if transform is not None and transform.kind == "transform":
                    self.apply_fn_transform = transform

    def alias_of(self, name: cst.Name, kind: str) -> tuple[Transform, str | None] | None:
        """What an original Name stands for when it was bound to a transform's ``init``/``apply`` (``kind``),
        resolved through its scope: ``fn = model_a.apply`` in one function and ``fn = model_b.apply`` in another
        are different aliases. For multi_transform, the second item is the method."""
        scope = self.scopes.get(name)
        if scope is None or name.value not in scope:
            return None
        found = [self._aliases.get(getattr(assignment, "node", None)) for assignment in scope[name.value]]  # type: ignore[arg-type]
        if len(found) != 1 or found[0] is None or found[0][0] != kind:
            return None
        return found[0][1], found[0][2]

    def apply_of(self, value: cst.BaseExpression) -> Transform | None:
        """The transform whose ``apply`` ``value`` is (``model.apply``, ``jax.jit(model.apply)``)."""
        return self.method_of(value, "apply")

    def method_of(self, value: cst.BaseExpression, method: str) -> Transform | None:
        """The transform whose ``init``/``apply`` ``value`` is, directly or through ``jax.jit``."""
        if (
            type(value) is cst.Call
            and value.args
            and is_name_attribute(value.args[0].value, method)  # (before the look-up: it fails for most calls)
            and "jax.jit" in self.qualified_names(value.func)
        ):
            value = value.args[0].value
        if is_name_attribute(value, method):
            return self.transform_named(value.value)  # type: ignore[attr-defined]
        return None

    def _find_passed_transforms(self) -> None:
        """``evaluate(model, ...)``: the parameter of a local function that receives a transform is one."""
        for node in self.nodes_of(cst.Call):
            if type(node.func) is not cst.Name:
                continue
            function = self.function_named(node.func)
            if function is None:
                continue
            params = list(function.params.params)
            for index, arg in enumerate(node.args):
                if arg.star or type(arg.value) is not cst.Name:
                    continue
                transform = self.transform_named(arg.value)
                if transform is None:
                    continue
                if arg.keyword is None and index < len(params):
                    self._declared.setdefault(params[index], transform)
                elif arg.keyword is not None:
                    for param in [*params, *function.params.kwonly_params]:
                        if param.name.value == arg.keyword.value:
                            self._declared.setdefault(param, transform)

    def _find_multi_transform_methods(self) -> None:
        for transform in self.transforms.values():
            function = transform.function
            if transform.kind != "multi_transform" or not isinstance(function, cst.FunctionDef):
                continue
            last = function.body.body[-1] if function.body.body else None
            if not m.matches(last, m.SimpleStatementLine([m.Return(m.Tuple())])):
                continue
            elements = last.body[0].value.elements  # type: ignore[union-attr]
            if len(elements) != 2 or not isinstance(elements[1].value, cst.Tuple):
                continue
            nested = {
                statement.name.value for statement in function.body.body if isinstance(statement, cst.FunctionDef)
            }
            methods = []
            for element in elements[1].value.elements:
                if is_name_attribute(element.value):  # ``module.encode``
                    methods.append(element.value.attr.value)  # type: ignore[attr-defined]
                elif isinstance(element.value, cst.Name) and element.value.value in nested:  # ``def encode(x): ...``
                    methods.append(element.value.value)
                else:
                    break
            else:
                transform.methods = tuple(methods)

    def _choose_linen_alias(self) -> None:
        for statement in self._import_statements():
            if isinstance(statement, cst.Import):
                for alias in statement.names:
                    if _dotted(alias.name) == "flax.linen":
                        self.linen_alias = alias.asname.name.value if alias.asname else "flax.linen"  # type: ignore[union-attr]
                        return
        global_scope = self.scopes.get(self.module)
        if global_scope is not None and "nn" in global_scope:
            self.linen_alias = "linen"

    def alias_names(self) -> frozenset[str]:
        """The names :meth:`alias_of` may find bound to a transform's ``init``/``apply`` (``fn = model.apply``)."""
        return frozenset(name.value for name in self._aliases)  # type: ignore[attr-defined]


def config_keys(literal: cst.CSTNode) -> list[str] | None:
    """The keys of a ``{"k": v}`` literal or a ``dict(k=v)`` call, when they are all constants."""
    if isinstance(literal, cst.Dict):
        keys = []
        for element in literal.elements:
            if not isinstance(element, cst.DictElement) or not isinstance(element.key, cst.SimpleString):
                return None
            keys.append(str(element.key.evaluated_value))
        return keys
    if isinstance(literal, cst.Call):
        if any(arg.keyword is None for arg in literal.args):
            return None
        return [arg.keyword.value for arg in literal.args]  # type: ignore[union-attr]
    return None


def literal_items(node: cst.BaseExpression | None) -> list[cst.BaseExpression] | None:
    """The items of a literal list, tuple or set (a dict's values), or None when ``node`` is none of those or
    holds a ``*``/``**`` splat."""
    if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
        if any(isinstance(element, cst.StarredElement) for element in node.elements):
            return None
        return [element.value for element in node.elements]
    if isinstance(node, cst.Dict):
        if any(isinstance(element, cst.StarredDictElement) for element in node.elements):
            return None
        return [element.value for element in node.elements]  # type: ignore[union-attr]
    return None


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _is_star_import(node: cst.CSTNode) -> bool:
    """Whether ``node`` is ``from <module> import *``."""
    return type(node) is cst.ImportFrom and type(node.names) is cst.ImportStar


def _kept_or_inspected(chain: list[cst.CSTNode], kept: Collection[int]) -> bool:
    """Whether the read of a class whose ancestors ``chain`` lists (the read first) neither builds nor subclasses
    it: in a statement ``kept`` as written, in an annotation, or as what ``isinstance``/``issubclass`` test."""
    if any(id(node) in kept or type(node) is cst.Annotation for node in chain):
        return True
    for child, parent in zip(chain, chain[1:]):
        if type(parent) is cst.Call:
            func = parent.func
            return child is not func and type(func) is cst.Name and func.value in ("isinstance", "issubclass")
        if isinstance(parent, cst.BaseStatement):
            return False
    return False
