"""Traversals of a libcst tree that visit what libcst's own traversal visits, in the same order, without its cost.

libcst's ``node.visit(visitor)`` rebuilds every node of the tree, whether the visitor changes anything or not
(a read-only visitor's traversal builds a copy and drops it). :func:`fast_walk` only reads; :func:`fast_transform`
rebuilds a node only when one of its children was replaced, so an untouched subtree comes back as the very same
object; :func:`walk` lists a subtree's nodes. The child fields of each node type, in libcst's (syntactic) order,
are learned from libcst once.

Most nodes of a tree are :data:`TOKENS` (whitespace, comments, punctuation, operators: some 60% of a typical
module's nodes). Nothing in them is a name, an expression or a statement, so the analysis and the rules need not
enter them: :func:`walk` leaves them out, and the other two skip the node types they are told to.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import libcst as cst
import libcst._nodes.op
import libcst._nodes.whitespace


class _FieldOrder(cst.CSTVisitor):
    """Notes the child fields libcst visits on one node, in its (syntactic) order, without entering them."""

    def __init__(self, root: cst.CSTNode) -> None:
        super().__init__()
        self.root = root
        self.fields: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        return node is self.root

    def on_leave(self, original_node: cst.CSTNode) -> None:
        pass

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if node is self.root and attribute not in self.fields:
            self.fields.append(attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
#: Fields of a node type not seen visited yet: libcst skips some when empty (an f-string's ``format_spec``).
_UNSEEN_FIELDS: dict[type, tuple[str, ...]] = {}
#: The statement sequences libcst visits with ``visit_body_sequence`` (it drops the lines a removal emptied).
_BODIES = frozenset({(cst.Module, "body"), (cst.IndentedBlock, "body")})
#: Each field's dataclass default (``dataclasses.MISSING`` when it has none), for removals.
_FIELD_DEFAULTS: dict[type, dict[str, Any]] = {}


def _learn_fields(node: cst.CSTNode) -> tuple[str, ...]:
    """The child fields libcst visits on ``node``, merged with those learned from other nodes of its type."""
    recorder = _FieldOrder(node)
    node.visit(recorder)
    fields = recorder.fields
    for index, field in enumerate(_CHILD_FIELDS.get(type(node), ())):
        if field not in fields:  # keep a field seen on another node, after the one it followed there
            previous = _CHILD_FIELDS[type(node)][index - 1] if index else None
            fields.insert(fields.index(previous) + 1 if previous in fields else 0, field)
    _CHILD_FIELDS[type(node)] = tuple(fields)
    for table in _KNOWN_FIELDS.values():
        table.pop(type(node), None)
    _FIELD_DEFAULTS[type(node)] = {field.name: field.default for field in dataclasses.fields(node)}  # type: ignore[arg-type]
    _UNSEEN_FIELDS[type(node)] = tuple(
        field.name
        for field in dataclasses.fields(node)  # type: ignore[arg-type]
        # a text or flag field (``Name.value``, ``Param.star``) never holds a node: no need to look at it again
        if field.name not in fields and type(getattr(node, field.name)) not in (str, bool)
    )
    return _CHILD_FIELDS[type(node)]


def _child_fields(node: cst.CSTNode) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(type(node))
    if fields is None:
        return _learn_fields(node)
    for field in _UNSEEN_FIELDS[type(node)]:
        value = getattr(node, field)
        if _is_node(value) or (type(value) in (tuple, list) and any(_is_node(item) for item in value)):
            return _learn_fields(node)
    return fields


def _subclasses(base: type) -> set[type]:
    found = set()
    for sub in base.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


#: Every node type of libcst: ``type(value) in NODE_TYPES`` is ``isinstance(value, cst.CSTNode)`` without the
#: cost of an isinstance check against an abstract base class (these tests run on every field of every node).
NODE_TYPES: frozenset[type] = frozenset(_subclasses(cst.CSTNode))


def _is_node(value: object) -> bool:
    return type(value) in NODE_TYPES


def _concrete_nodes(module: object) -> set[type]:
    return {
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, cst.CSTNode) and value.__module__ == module.__name__  # type: ignore[attr-defined]
    }


#: The node types that are only tokens: their children, if any, are whitespace and comments.
TOKENS: frozenset[type] = frozenset(
    _concrete_nodes(libcst._nodes.op)
    | _concrete_nodes(libcst._nodes.whitespace)
    | {
        cst.LeftParen,
        cst.RightParen,
        cst.LeftSquareBracket,
        cst.RightSquareBracket,
        cst.LeftCurlyBrace,
        cst.RightCurlyBrace,
    }
)


#: The node types but the :data:`TOKENS`: what :func:`walk` lists.
NOT_TOKENS: frozenset[type] = NODE_TYPES - TOKENS


def _leaf_types(annotation: Any) -> set[type] | None:
    """The concrete node types a field annotated ``annotation`` can hold (through ``Union``, ``Optional`` and
    ``Sequence``); None when the annotation does not say."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, collections.abc.Sequence, list, tuple):
        found: set[type] = set()
        for argument in typing.get_args(annotation):
            leaves = set() if argument is Ellipsis else _leaf_types(argument)
            if leaves is None:
                return None
            found |= leaves
        return found
    if origin is typing.Literal or annotation in (str, bool, int, type(None)):
        return set()
    if isinstance(annotation, type) and issubclass(annotation, cst.CSTNode):
        return set(_concrete_subclasses().get(annotation, ()))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):  # MaybeSentinel
        return set()
    return None


@functools.cache
def _concrete_subclasses() -> dict[type, frozenset[type]]:
    """Each node type → its concrete subclasses (itself included): read from their MROs, once (``issubclass``
    against libcst's abstract bases goes through ``ABCMeta``, and the first test of each pair is slow)."""
    found: dict[type, set[type]] = {}
    for kind in NODE_TYPES:
        if not inspect.isabstract(kind):
            for base in kind.__mro__:
                found.setdefault(base, set()).add(kind)
    return {base: frozenset(kinds) for base, kinds in found.items()}


@functools.cache
def concrete_types(*bases: type) -> frozenset[type]:
    """The concrete node types that subclass one of ``bases`` (or are one): ``type(node) in concrete_types(...)``
    is ``isinstance(node, bases)`` without the cost of ``ABCMeta``'s check (libcst's concrete nodes have no
    subclasses)."""
    table = _concrete_subclasses()
    return frozenset().union(*(table.get(base, ()) for base in bases))


@functools.cache
def _field_types(node_type: type) -> dict[str, frozenset[type] | None]:
    """For each field of ``node_type``, the concrete node types its annotation allows (None: unknown)."""
    hints = typing.get_type_hints(node_type)
    found: dict[str, frozenset[type] | None] = {}
    for field in dataclasses.fields(node_type):
        leaves = _leaf_types(hints[field.name])
        found[field.name] = None if leaves is None else frozenset(leaves)
    return found


#: ``skip`` → node type → (its child fields, those of them that can hold a node whose type is not in ``skip``).
_FIELDS_TO_VISIT: dict[frozenset[type], dict[type, tuple[tuple[str, ...], tuple[str, ...]]]] = {}
#: ``skip`` → node type → :func:`fields_to_visit` of its nodes, for the types whose child fields are all known (no
#: field libcst skips when empty is unseen yet: their nodes need no look at it): the walks read it first.
_KNOWN_FIELDS: dict[frozenset[type], dict[type, tuple[str, ...]]] = {}


def known_fields(skip: frozenset[type]) -> dict[type, tuple[str, ...]]:
    """Node type → :func:`fields_to_visit` of its nodes, for the types whose fields need no second look (a walk
    that skips ``skip`` reads it first, and calls :func:`fields_to_visit` for a type not in it)."""
    table = _KNOWN_FIELDS.get(skip)
    if table is None:
        table = _KNOWN_FIELDS[skip] = {}
    return table


def fields_to_visit(node: cst.CSTNode, skip: frozenset[type]) -> tuple[str, ...]:
    """The child fields of ``node`` a walk that skips the types ``skip`` must look into: not those whose
    annotation allows only types in ``skip`` (three fields in four are whitespace or punctuation: ``Name.lpar``,
    ``Arg.comma``...), which it would read only to skip what they hold."""
    fields = _child_fields(node)
    by_type = _FIELDS_TO_VISIT.get(skip)
    if by_type is None:
        by_type = _FIELDS_TO_VISIT[skip] = {}
    known = by_type.get(type(node))
    if known is None or known[0] is not fields:
        allowed = _field_types(type(node))
        visited = tuple(field for field in fields if (kinds := allowed.get(field)) is None or not kinds <= skip)
        known = by_type[type(node)] = (fields, visited)
    if not _UNSEEN_FIELDS[type(node)]:
        known_fields(skip)[type(node)] = known[1]
    return known[1]


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """libcst's ``node.children`` (the direct children, tokens included, in order) without the traversal that
    property runs (it rebuilds the node to find them)."""
    found: list[cst.CSTNode] = []
    for field in _child_fields(node):
        value = getattr(node, field)
        if type(value) in NODE_TYPES:
            found.append(value)
        elif type(value) is tuple or type(value) is list:
            found.extend(item for item in value if _is_node(item))
    return found


def walk(node: cst.CSTNode, enter: Callable[[cst.CSTNode], bool] | None = None) -> list[cst.CSTNode]:
    """``node`` and its descendants but the :data:`TOKENS` in pre-order: the nodes libcst's traversal visits, in
    its order, less the whitespace, punctuation and operators.

    A node for which ``enter`` returns False is listed, its descendants are not.

    (libcst's ``children`` property runs a traversal of its own on every call, so walking through it costs
    a traversal per node.)
    """
    found: list[cst.CSTNode] = []
    _collect(node, found, enter, known_fields(TOKENS))
    return found


# The walks below each loop over the child fields themselves: they run on every node of every file, and going
# through children() (which lists the tokens too) made walk() twice as slow. (So does the analysis' walk,
# :meth:`h2f.resolver.Resolver.walk`.)
# Each takes the table of :data:`_KNOWN_FIELDS` for what it skips, and calls fields_to_visit() only for a type
# not in it: two calls less per node.
def _collect(
    node: cst.CSTNode,
    found: list[cst.CSTNode],
    enter: Callable[[cst.CSTNode], bool] | None,
    known: dict[type, tuple[str, ...]],
) -> None:
    found.append(node)
    if enter is not None and not enter(node):
        return
    fields = known.get(type(node))
    for field in fields_to_visit(node, TOKENS) if fields is None else fields:
        value = getattr(node, field)
        kind = type(value)
        if kind in NOT_TOKENS:
            _collect(value, found, enter, known)
        elif kind is tuple or kind is list:
            for item in value:
                if type(item) in NOT_TOKENS:
                    _collect(item, found, enter, known)


def fast_walk(node: cst.CSTNode, visitor: cst.CSTVisitor, skip: frozenset[type] = frozenset()) -> None:
    """``node.visit(visitor)`` for a visitor that only uses ``on_visit``/``on_leave``: the same nodes in the same
    order, without rebuilding every node as libcst's traversal does (a visitor's traversal builds a copy of the
    tree and drops it); descendants whose type is in ``skip`` are not visited (nor their subtrees)."""
    _walk(node, visitor, skip, known_fields(skip))


def _walk(
    node: cst.CSTNode, visitor: cst.CSTVisitor, skip: frozenset[type], known: dict[type, tuple[str, ...]]
) -> None:
    if visitor.on_visit(node):
        fields = known.get(type(node))
        for field in fields_to_visit(node, skip) if fields is None else fields:
            value = getattr(node, field)
            if type(value) in NODE_TYPES:
                if type(value) not in skip:
                    _walk(value, visitor, skip, known)
            elif type(value) is tuple or type(value) is list:
                for item in value:
                    if type(item) in NODE_TYPES and type(item) not in skip:
                        _walk(item, visitor, skip, known)
    visitor.on_leave(node)


class TypeDispatch(cst.CSTTransformer):
    """A transformer whose ``visit_<Node>``/``leave_<Node>`` hooks are found by the node's type in tables made once
    per class, where libcst's ``on_visit``/``on_leave`` format each hook's name and look it up on every node (the
    same hooks, called alike; ``visit_<Node>_<attribute>`` hooks are not supported, as in :func:`fast_transform`).
    For transformers defined once, at module level: the tables are made when the class is."""

    _visit_hooks: typing.ClassVar[dict[type, Callable[..., Any]]] = {}
    _leave_hooks: typing.ClassVar[dict[type, Callable[..., Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._visit_hooks = _hooks_by_type(cls, "visit_")
        cls._leave_hooks = _hooks_by_type(cls, "leave_")

    def on_visit(self, node: cst.CSTNode) -> bool:
        hook = self._visit_hooks.get(type(node))
        return hook is None or hook(self, node) is not False

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        hook = self._leave_hooks.get(type(original_node))
        return updated_node if hook is None else hook(self, original_node, updated_node)


def _hooks_by_type(cls: type, prefix: str) -> dict[type, Callable[..., Any]]:
    """The methods of ``cls`` named ``<prefix><Node>``, by node type, but libcst's own: ``CSTTransformer`` has one
    for every node type, which does nothing (a visit returns None, a leave the updated node)."""
    return {
        getattr(cst, name.removeprefix(prefix)): getattr(cls, name)
        for name in dir(cls)
        if name.startswith(prefix)
        and _is_node_type(getattr(cst, name.removeprefix(prefix), None))
        and getattr(cls, name) is not getattr(cst.CSTTransformer, name, None)
    }


def _is_node_type(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, cst.CSTNode)


def fast_transform(
    node: cst.CSTNode,
    transformer: cst.CSTTransformer,
    skip: frozenset[type] = frozenset(),
    only: set[int] | None = None,
) -> Any:
    """``node.visit(transformer)`` for a transformer that only uses ``on_visit``/``on_leave`` (no
    ``visit_<Node>_<attribute>`` hooks): the same hooks on the same nodes in the same order, and the same result,
    but a node whose children all came back unchanged is passed to ``on_leave`` as itself, not as a copy.
    Descendants whose type is in ``skip`` are kept as they are without a visit: name only types whose subtrees the
    transformer leaves alone. So are those whose id is not in ``only``, when given, at the time the traversal
    reaches them (the transformer may add to it as it goes): it must hold the parent of each node it holds."""
    return _transform(node, transformer, skip, _entered(skip), known_fields(skip), only)


@functools.cache
def _entered(skip: frozenset[type]) -> frozenset[type]:
    """The node types a traversal that skips ``skip`` enters: one test per child rather than two."""
    return NODE_TYPES - skip


def _transform(
    node: cst.CSTNode,
    transformer: cst.CSTTransformer,
    skip: frozenset[type],
    entered: frozenset[type],
    known: dict[type, tuple[str, ...]],
    only: set[int] | None,
) -> Any:
    updated = node
    if transformer.on_visit(node):
        changes: dict[str, Any] | None = None
        fields = known.get(type(node))
        for field in fields_to_visit(node, skip) if fields is None else fields:
            value = getattr(node, field)
            kind = type(value)
            if kind in entered:
                if only is not None and id(value) not in only:
                    continue
                result = _transform(value, transformer, skip, entered, known, only)
                if result is not value:
                    if changes is None:
                        changes = {}
                    changes[field] = _replacement(node, field, result)
            elif kind is tuple or kind is list:
                items: list[Any] | None = None  # (made when the first item changes)
                for index, item in enumerate(value):
                    result = (
                        _transform(item, transformer, skip, entered, known, only)
                        if type(item) in entered and (only is None or id(item) in only)
                        else item
                    )
                    if result is item:
                        if items is not None:
                            items.append(item)
                        continue
                    if items is None:
                        items = list(value[:index])
                    if type(result) is cst.RemovalSentinel:
                        continue
                    body = (type(node), field) in _BODIES
                    for new in result.nodes if type(result) is cst.FlattenSentinel else (result,):
                        # libcst drops a statement line a removal emptied from a block (it then gets its ``pass``)
                        if not (body and new._is_removable() and not item._is_removable()):
                            items.append(new)
                if items is not None:
                    if changes is None:
                        changes = {}
                    changes[field] = tuple(items)
        if changes is not None:
            updated = _rebuilt(node, changes)
    return transformer.on_leave(node, updated)


_Node = typing.TypeVar("_Node", bound=cst.CSTNode)


def changed(node: _Node, **changes: Any) -> _Node:
    """``node.with_changes(**changes)``, the node rebuilt as :func:`fast_transform` rebuilds one (libcst's goes
    through ``dataclasses.replace``, which reads and checks every field's definition on every call)."""
    fields = _FIELD_DEFAULTS.get(type(node)) or {field.name: None for field in dataclasses.fields(node)}  # type: ignore[arg-type]
    unknown = changes.keys() - fields.keys()
    if unknown:
        raise TypeError(f"{type(node).__name__} has no field {', '.join(sorted(unknown))}")
    return _rebuilt(node, changes)  # type: ignore[return-value]


def _rebuilt(node: cst.CSTNode, changes: dict[str, Any]) -> cst.CSTNode:
    """``node.with_changes(**changes)`` without the generic work of ``dataclasses.replace`` (it reads and checks
    every field's definition on every call): the same fields set the way the frozen dataclass ``__init__`` sets
    them, the same validation (``__post_init__``)."""
    kind = type(node)
    fields = _FIELD_DEFAULTS.get(kind)
    names = fields if fields is not None else [field.name for field in dataclasses.fields(kind)]  # type: ignore[arg-type]
    rebuilt = object.__new__(kind)
    for name in names:
        object.__setattr__(rebuilt, name, changes[name] if name in changes else getattr(node, name))
    rebuilt.__post_init__()
    return rebuilt


def _replacement(parent: cst.CSTNode, field: str, result: Any) -> Any:
    """What a single-node field of ``parent`` holds when its child came back as ``result``: libcst's rules for a
    removed child (an optional field becomes ``None``, a field that may be ``MaybeSentinel`` becomes its
    default; a required child cannot be removed) and for a flattened one (only sequences take several)."""
    if type(result) is cst.FlattenSentinel:
        raise TypeError(f"{type(parent).__name__}.{field} takes one node, not a FlattenSentinel")
    if type(result) is not cst.RemovalSentinel:
        return result
    default = _FIELD_DEFAULTS[type(parent)].get(field, dataclasses.MISSING)
    if default is None or default is cst.MaybeSentinel.DEFAULT:
        return default
    raise TypeError(f"{type(parent).__name__}.{field} is required: its node cannot be removed")
