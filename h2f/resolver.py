"""Parents, scopes and qualified names of a module's nodes, from one walk.

libcst's ``ParentNodeProvider``, ``ScopeProvider`` and ``QualifiedNameProvider`` cost several times a parse
(three traversals, an expression-context pass, lazy name resolution). h2f needs little of them: the parent of
a node, the bindings of a name in a scope and their uses, and the dotted name an expression refers to through
the imports (``hk.nets.MLP`` → ``haiku.nets.MLP``). :class:`Resolver` records all of it in the one pre-order walk
the analysis makes anyway, and answers with the same objects' shapes as libcst (``scope[name]`` → assignments
with ``.node``, ``.name``, ``.scope``, ``.references``; ``scope.assignments``; ``scope.accesses``).

Python's rules are followed: a class body is not visible from the functions and comprehensions inside it,
``global``/``nonlocal`` redirect bindings, parameters bind in the function and their defaults and annotations
are evaluated outside it, the first iterable of a comprehension is evaluated outside it, a walrus binds in the
enclosing function, ``del x`` makes ``x`` local. Where libcst differs (it binds a walrus in the comprehension and
reads ``del x`` as a use; it also resolves names inside string annotations, which this resolver does not),
this module follows Python; no Haiku name h2f asks about depends on it (``tests/test_resolver.py`` compares).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Generic, TypeVar

import libcst as cst

from h2f.traversal import NOT_TOKENS, TOKENS, concrete_types, fields_to_visit, known_fields

_T = TypeVar("_T")

MODULE, CLASS, FUNCTION, COMPREHENSION, BUILTIN = "module", "class", "function", "comprehension", "builtin"


class NodeMap(Generic[_T]):
    """A read-only mapping from original nodes to values, keyed by identity (libcst nodes hash in Python)."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[int, _T]) -> None:
        self._values = values

    def get(self, node: object, default: _T | None = None) -> _T | None:
        """The value of ``node``, or ``default``."""
        return self._values.get(id(node), default)

    def __getitem__(self, node: object) -> _T:
        return self._values[id(node)]

    def __contains__(self, node: object) -> bool:
        return id(node) in self._values

    def __len__(self) -> int:
        return len(self._values)

    def by_id(self) -> Mapping[int, _T]:
        """The values by the ``id()`` of their node, for a loop that asks of many nodes (without a call per node):
        valid for nodes alive when it asks (a freed node's id may be another node's), as a tree's nodes are."""
        return self._values


class Access:
    """One use of a name: the Name node, the scope it is read in, and the assignments it may read."""

    __slots__ = ("node", "scope", "referents")

    def __init__(self, node: cst.CSTNode, scope: Scope) -> None:
        self.node = node
        self.scope = scope
        self.referents: list[Assignment] = []


class Assignment:
    """One binding of ``name`` in ``scope`` by ``node`` (a Name target, Param, FunctionDef, ClassDef, Import…)."""

    __slots__ = ("name", "scope", "node", "_references")

    def __init__(self, name: str, scope: Scope, node: cst.CSTNode | None) -> None:
        self.name = name
        self.scope = scope
        self.node = node
        self._references: list[Access] = []

    @property
    def references(self) -> list[Access]:
        """The reads that may read this binding, in the module's order."""
        if self.scope.resolver is not None:
            self.scope.resolver.resolve_reads(self.name)
        return self._references

    def qualified_names(self, full_name: str) -> set[str]:
        """What ``full_name`` (starting with this binding's name) stands for: a local name, prefixed by the scope."""
        prefix = self.scope.name_prefix
        return {f"{prefix}.{full_name}" if prefix else full_name}


class BuiltinAssignment(Assignment):
    """A builtin name (``print``); it has no node."""

    __slots__ = ()

    def qualified_names(self, full_name: str) -> set[str]:
        """``builtins.<name>``."""
        return {f"builtins.{self.name}"}


class ImportAssignment(Assignment):
    """A name bound by an ``import``/``from … import`` statement (``node`` is the statement)."""

    __slots__ = ()

    def qualified_names(self, full_name: str) -> set[str]:
        """The imported dotted name ``full_name`` stands for (``hk.nets.MLP`` → ``haiku.nets.MLP``)."""
        statement = self.node
        assert type(statement) in (cst.Import, cst.ImportFrom)
        if type(statement.names) is cst.ImportStar:
            return set()
        module = ""
        if type(statement) is cst.ImportFrom:
            module = (full_name_of(statement.module) or "") if statement.module is not None else ""
            if statement.relative:
                module = "." * len(statement.relative) + module
        results = set()
        for alias in statement.names:
            real_name = full_name_of(alias.name)
            if not real_name:
                continue
            parts = real_name.split(".")
            for end in range(len(parts), 0, -1):  # a dotted import: the longest prefix that matches
                as_name = real = ".".join(parts[:end])
                if module.endswith("."):
                    real = f"{module}{real}"
                elif module:
                    real = f"{module}.{real}"
                if alias.asname is not None and type(alias.asname.name) is cst.Name:
                    as_name = alias.asname.name.value
                if full_name.startswith(as_name):
                    remaining = full_name[len(as_name) :]
                    if remaining and not remaining.startswith("."):
                        continue
                    remaining = remaining.lstrip(".")
                    results.add(f"{real}.{remaining}" if remaining else real)
                    break
        return results


class Scope:
    """A namespace: the module, a class body, a function or lambda, a comprehension (or the builtins)."""

    def __init__(
        self, kind: str, parent: Scope | None, node: cst.CSTNode | None = None, name: str | None = None
    ) -> None:
        self.kind = kind
        self.parent: Scope = parent if parent is not None else self
        self.node = node
        self.globals: Scope = self if kind == MODULE else (parent.globals if parent is not None else self)
        #: The resolver that walked this scope's module, which resolves its reads on demand.
        self.resolver: Resolver | None = parent.resolver if parent is not None else None
        self._assignments: dict[str, list[Assignment]] = {}
        self._accesses: dict[str, list[Access]] = {}
        self._overwrites: dict[str, Scope] = {}  # global / nonlocal declarations
        if kind in (MODULE, BUILTIN) or parent is None:
            self.name_prefix = ""
        elif kind == FUNCTION:
            self.name_prefix = ".".join(filter(None, [parent.name_prefix, name, "<locals>"]))
        elif kind == CLASS:
            self.name_prefix = ".".join(filter(None, [parent.name_prefix, name]))
        else:
            self.name_prefix = ".".join(filter(None, [parent.name_prefix, "<comprehension>"]))

    # ----- recording -----------------------------------------------------------------------------------

    def _target(self, name: str) -> Scope:
        """The scope a binding of ``name`` here lands in (``global``/``nonlocal`` redirect it)."""
        redirected = self._overwrites.get(name)
        if redirected is None:
            return self
        return redirected._visible()._target(name)

    def record(self, name: str, node: cst.CSTNode, kind: type[Assignment] = Assignment) -> None:
        """Record that ``node`` binds ``name`` in this scope (or where ``global``/``nonlocal`` send it)."""
        target = self._target(name)
        target._assignments.setdefault(name, []).append(kind(name, target, node))

    def declare(self, name: str, nonlocal_: bool) -> None:
        """``global name`` / ``nonlocal name``."""
        if self.kind != MODULE:
            self._overwrites[name] = self.parent if nonlocal_ else self.globals

    # ----- lookup --------------------------------------------------------------------------------------

    def _visible(self) -> Scope:
        """This scope, or the nearest ancestor whose names an inner scope sees (class bodies are skipped)."""
        scope = self
        while scope.kind == CLASS:
            scope = scope.parent
        return scope

    def _resolve(self, name: str) -> list[Assignment]:
        if self.kind == BUILTIN:
            if name not in self._assignments and hasattr(builtins, name):
                self._assignments[name] = [BuiltinAssignment(name, self, None)]
            return self._assignments.get(name, [])
        redirected = self._overwrites.get(name)
        if redirected is not None:
            return redirected._visible()._resolve(name)
        found = self._assignments.get(name)
        if found:
            return found
        return self.parent._visible()._resolve(name)

    def __getitem__(self, name: str) -> list[Assignment]:
        """Every binding ``name`` may refer to when read in this scope (those of the nearest scope that has one)."""
        return self._resolve(name)

    def __contains__(self, name: str) -> bool:
        if self.kind == BUILTIN:
            return hasattr(builtins, name)
        redirected = self._overwrites.get(name)
        if redirected is not None:
            return name in redirected
        if self._assignments.get(name):
            return True
        return name in self.parent._visible()

    @property
    def assignments(self) -> list[Assignment]:
        """The bindings recorded in this scope itself."""
        return [assignment for found in self._assignments.values() for assignment in found]

    @property
    def accesses(self) -> list[Access]:
        """The reads of names made in this scope itself."""
        if self.resolver is not None:
            self.resolver.finish()
        return [access for found in self._accesses.values() for access in found]


def full_name_of(node: cst.CSTNode | None) -> str | None:
    """The dotted name of a Name/Attribute (through a Call's function, a Subscript's value, a Decorator)."""
    parts: list[str] = []
    while True:
        if type(node) is cst.Name:
            parts.append(node.value)
            return ".".join(reversed(parts))
        if parts and type(node) not in (cst.Attribute, cst.Call, cst.Subscript):
            parts.append("None")  # libcst's spelling of ``"".join`` and ``(a + b).sum``: ``None.join``
            return ".".join(reversed(parts))
        if type(node) is cst.Attribute:
            parts.append(node.attr.value)
            node = node.value
        elif type(node) is cst.Call:
            node = node.func
        elif type(node) is cst.Subscript:
            node = node.value
        elif type(node) in (cst.FunctionDef, cst.ClassDef):
            node = node.name
        elif type(node) is cst.Decorator:
            node = node.decorator
        else:
            return None


def _binds(node: cst.CSTNode, assignment: Assignment) -> bool:
    """Whether ``node`` is the binding ``assignment`` records (for an import: a name written in the statement)."""
    declared = assignment.node
    if node is declared:
        return True
    if type(declared) in (cst.Import, cst.ImportFrom) and type(declared.names) is not cst.ImportStar:
        return any(
            alias.name is node or (alias.asname is not None and alias.asname.name is node) for alias in declared.names
        )
    return False


#: Nodes after which the bindings they make are visible (libcst's "assignment-like" nodes).
_BINDING_STATEMENTS = frozenset(
    {
        cst.AnnAssign,
        cst.AsName,
        cst.Assign,
        cst.AugAssign,
        cst.ClassDef,
        cst.CompFor,
        cst.FunctionDef,
        cst.Import,
        cst.ImportFrom,
        cst.NamedExpr,
        cst.Parameters,
        cst.WithItem,
    }
)
#: The statements but those that bind (where a binding stops looking for the statement that makes it).
_OTHER_STATEMENTS = concrete_types(cst.BaseStatement, cst.BaseSmallStatement) - _BINDING_STATEMENTS
_NO_SCOPE = Scope(BUILTIN, None)  # marks subtrees libcst gives no scope: attribute names, keywords, imports
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)


class Resolver:
    """One pre-order walk of a module recording every node (``nodes``, where each is and its subtree ends), parents
    and scopes.

    Walk the module with it (:meth:`walk`), then ask it: the reads of a name are resolved when first needed
    (:meth:`finish` resolves them all).
    """

    def __init__(self) -> None:
        self.nodes: list[cst.CSTNode] = []
        #: id of each node -> where it is in ``nodes``.
        self.positions: dict[int, int] = {}
        #: Where the subtree of the node at each position of ``nodes`` ends there (:meth:`span`).
        self.ends: list[int] = []
        self._parents: dict[int, cst.CSTNode] = {}
        self._scopes: dict[int, Scope] = {}
        #: id of a node -> the scope its subtree is evaluated in, when not its parent's.
        self._enter: dict[int, Scope] = {}
        self._stores: set[int] = set()  # ids of Name nodes that are binding targets
        self._declarations: set[int] = set()  # ids of the names of defs, classes and parameters: neither
        self._reads: list[tuple[cst.Name, Scope]] = []
        #: The names whose reads are resolved (:meth:`resolve_reads`), and the reads of the others by name.
        self._resolved: set[str] = set()
        self._unresolved: dict[str, list[tuple[cst.Name, Scope]]] | None = None
        self._qualified: dict[int, frozenset[str]] = {}
        #: Bindings that alias a dotted name (``I = hk.initializers``) → the qualified names it stands for.
        self.aliases: dict[int, frozenset[str]] = {}
        self._accesses: dict[int, Access] = {}
        self._bound: dict[int, int] = {}  # id of an Assignment -> :meth:`_bound_at`
        self._bindings: dict[tuple[int, str], list[Assignment]] = {}  # :meth:`_bindings_of`
        self._binding_names: dict[tuple[int, str], frozenset[str]] = {}  # :meth:`_names_of`, but through aliases

    # ----- the walk ------------------------------------------------------------------------------------

    def walk(self, module: cst.Module) -> None:
        """Record ``module`` and its nodes but the :data:`~h2f.traversal.TOKENS`, in the order of libcst's
        traversal (:func:`h2f.traversal.fast_walk`'s, in one call per node rather than a visitor's three: the
        parent, the scope and the start of the span are arguments and locals, not stacks)."""
        nodes, positions, ends = self.nodes, self.positions, self.ends
        parents, scopes, enter = self._parents, self._scopes, self._enter
        known = known_fields(TOKENS)

        # A closure: the tables it fills are its free variables, not attributes looked up on every node.
        def record(node: cst.CSTNode, parent: cst.CSTNode | None, scope: Scope) -> None:
            key = id(node)
            start = positions[key] = len(nodes)
            nodes.append(node)
            ends.append(start)  # (known when the subtree is done)
            if parent is not None:
                parents[key] = parent
            scope = enter.pop(key, scope)
            if scope is not _NO_SCOPE:
                scopes[key] = scope
                handler = _HANDLERS.get(type(node))
                if handler is not None:
                    handler(self, node, scope)
            fields = known.get(type(node))
            for field in fields_to_visit(node, TOKENS) if fields is None else fields:
                value = getattr(node, field)
                kind = type(value)
                if kind in NOT_TOKENS:
                    record(value, node, scope)
                elif kind is tuple or kind is list:
                    for item in value:
                        if type(item) in NOT_TOKENS:
                            record(item, node, scope)
            ends[start] = len(nodes)

        builtin = Scope(BUILTIN, None)
        builtin.resolver = self
        record(module, None, Scope(MODULE, builtin))

    def _switch(self, node: cst.CSTNode | None, scope: Scope) -> None:
        if node is not None:
            self._enter[id(node)] = scope

    def _store(self, target: cst.CSTNode) -> None:
        """Mark the Names a binding target writes (``a``, ``a, (b, *c)``; not ``a.b`` or ``a[0]``)."""
        if type(target) is cst.Name:
            self._stores.add(id(target))
        elif type(target) is cst.Tuple or type(target) is cst.List:
            for element in target.elements:
                self._store(element.value)
        elif type(target) is cst.StarredElement:
            self._store(target.value)

    # ----- node handlers (called in pre-order, with the scope the node is evaluated in) ------------------

    def _function(self, node: cst.FunctionDef, scope: Scope) -> None:
        scope.record(node.name.value, node)
        self._declarations.add(id(node.name))
        inner = Scope(FUNCTION, scope, node, node.name.value)
        self._switch(node.params, inner)
        self._switch(node.body, inner)
        self._switch(node.type_parameters, _NO_SCOPE)

    def _lambda(self, node: cst.Lambda, scope: Scope) -> None:
        inner = Scope(FUNCTION, scope, node)
        self._switch(node.params, inner)
        self._switch(node.body, inner)

    def _param(self, node: cst.Param, scope: Scope) -> None:
        scope.record(node.name.value, node)
        self._declarations.add(id(node.name))
        self._switch(node.default, scope.parent)
        self._switch(node.annotation, scope.parent)

    def _class(self, node: cst.ClassDef, scope: Scope) -> None:
        scope.record(node.name.value, node)
        self._declarations.add(id(node.name))
        self._switch(node.body, Scope(CLASS, scope, node, node.name.value))
        self._switch(node.type_parameters, _NO_SCOPE)

    def _comprehension(self, node: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp, scope: Scope) -> None:
        inner = Scope(COMPREHENSION, scope, node)
        if isinstance(node, cst.DictComp):
            self._switch(node.key, inner)
            self._switch(node.value, inner)
        else:
            self._switch(node.elt, inner)
        self._switch(node.for_in, inner)
        self._switch(node.for_in.iter, scope)  # the first iterable is evaluated outside

    def _import(self, node: cst.Import | cst.ImportFrom, scope: Scope) -> None:
        if type(node) is cst.ImportFrom:
            self._switch(node.module, _NO_SCOPE)
            if type(node.names) is cst.ImportStar:
                return
        for alias in node.names:  # type: ignore[union-attr]
            self._switch(alias, _NO_SCOPE)
            if alias.asname is not None and type(alias.asname.name) is cst.Name:
                scope.record(alias.asname.name.value, node, ImportAssignment)
                continue
            dotted = full_name_of(alias.name) or ""
            while dotted:  # ``import a.b`` binds ``a.b`` and ``a``
                scope.record(dotted, node, ImportAssignment)
                dotted = dotted.rpartition(".")[0]

    def _attribute(self, node: cst.Attribute, scope: Scope) -> None:
        self._switch(node.attr, _NO_SCOPE)

    def _arg(self, node: cst.Arg, scope: Scope) -> None:
        self._switch(node.keyword, _NO_SCOPE)

    def _global(self, node: cst.Global | cst.Nonlocal, scope: Scope) -> None:
        for item in node.names:
            scope.declare(item.name.value, isinstance(node, cst.Nonlocal))
            self._switch(item, _NO_SCOPE)

    def _assign(self, node: cst.Assign, scope: Scope) -> None:
        for target in node.targets:
            self._store(target.target)

    def _target(
        self, node: cst.AnnAssign | cst.AugAssign | cst.For | cst.CompFor | cst.NamedExpr, scope: Scope
    ) -> None:
        self._store(node.target)

    def _as_name(self, node: cst.AsName, scope: Scope) -> None:
        self._store(node.name)

    def _match_name(self, node: cst.MatchAs | cst.MatchStar, scope: Scope) -> None:
        if node.name is not None:
            self._store(node.name)

    def _match_mapping(self, node: cst.MatchMapping, scope: Scope) -> None:
        if node.rest is not None:
            self._store(node.rest)

    def _name(self, node: cst.Name, scope: Scope) -> None:
        key = id(node)
        if key in self._declarations:
            return
        if key not in self._stores:
            self._reads.append((node, scope))
            return
        parent = self._parents.get(key)
        if type(parent) is cst.NamedExpr:
            while scope.kind == COMPREHENSION:  # a walrus binds in the enclosing function
                scope = scope.parent
        scope.record(node.value, node)

    # ----- results -------------------------------------------------------------------------------------

    def finish(self) -> None:
        """Resolve every read to the bindings it may read (after the walk; later calls do nothing).

        The queries below need not wait for it: each resolves the reads of the names it is asked about on first
        use (:meth:`resolve_reads`), and most names of a module are never asked about.
        """
        resolved = self._resolved
        for node, scope in self._reads:
            if node.value not in resolved:
                self._resolve_read(node, scope)
        resolved.update(node.value for node, _ in self._reads)
        self._reads = []
        self._unresolved = {}

    def resolve_reads(self, name: str) -> None:
        """Resolve the reads of ``name`` (after the walk; later calls do nothing): the reads of one name are
        resolved together, in the module's order, so each binding's ``references`` list them all, in order."""
        if name in self._resolved:
            return
        self._resolved.add(name)
        unresolved = self._unresolved
        if unresolved is None:
            unresolved = self._unresolved = {}
            for read in self._reads:
                unresolved.setdefault(read[0].value, []).append(read)
        for node, scope in unresolved.pop(name, ()):
            self._resolve_read(node, scope)

    def _resolve_read(self, node: cst.Name, scope: Scope) -> None:
        """As in libcst, a read sees the bindings of its own scope made by statements that end before it, else
        those of the enclosing scopes (``x = x`` in a class body reads the outer ``x``)."""
        access = Access(node, scope)
        self._accesses[id(node)] = access
        scope._accesses.setdefault(node.value, []).append(access)
        start = self.positions[id(node)]
        found = scope[node.value]
        earlier = [
            a for a in found if a.scope is not scope or scope.kind == COMPREHENSION or self._bound_at(a) <= start
        ]
        if not earlier and found:
            earlier = scope.parent._visible()[node.value]
        for assignment in earlier:
            access.referents.append(assignment)
            assignment._references.append(access)

    def unbound(self, node: cst.CSTNode) -> bool:
        """Whether ``node`` is a read of a name that no binding of the module, nor a builtin, meets (one a star
        import binds)."""
        if type(node) is cst.Name:
            self.resolve_reads(node.value)
        access = self._accesses.get(id(node))
        return access is not None and not access.referents

    def _bound_at(self, assignment: Assignment) -> int:
        """Where in ``nodes`` the binding takes effect: the end of the statement (or target) that makes it (asked
        for every read of the name: remembered)."""
        found = self._bound.get(id(assignment))
        if found is None:
            found = self._bound[id(assignment)] = self._find_bound_at(assignment)
        return found

    def _find_bound_at(self, assignment: Assignment) -> int:
        node = assignment.node
        if node is None:
            return -1
        current: cst.CSTNode | None = node
        for _ in range(8):
            parent = self._parents.get(id(current))
            if type(current) in _BINDING_STATEMENTS:
                break
            if type(parent) is cst.For and parent.target is current:
                break
            if parent is None or type(parent) in _OTHER_STATEMENTS:
                current = node
                break
            current = parent
        return self.ends[self.positions[id(current)]]

    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        """Where the walked ``node`` and its descendants are in ``nodes``: ``nodes[start:end]``."""
        start = self.positions[id(node)]
        return start, self.ends[start]

    @property
    def parents(self) -> NodeMap[cst.CSTNode]:
        """The parent of every node but the module."""
        return NodeMap(self._parents)

    @property
    def scopes(self) -> NodeMap[Scope]:
        """The scope every node is evaluated in (none for attribute names, keywords, import statements' names)."""
        return NodeMap(self._scopes)

    def qualified_names(self, node: cst.CSTNode) -> frozenset[str]:
        """The dotted names an expression may stand for, through the imports (``hk.Linear`` → ``haiku.Linear``);
        a local variable's name is prefixed by its scope (``f.<locals>.x``), a builtin's by ``builtins``."""
        key = id(node)
        found = self._qualified.get(key)
        if found is None:
            found = self._qualified[key] = frozenset(self._compute_qualified(node))
        return found

    def _compute_qualified(self, node: cst.CSTNode) -> AbstractSet[str]:
        if type(node) is cst.Name:
            self.resolve_reads(node.value)
        access = self._accesses.get(id(node))
        if access is not None:  # a read: what the bindings it sees stand for
            return {name for referent in access.referents for name in self._names_of(referent, referent.name)}
        scope = self._scopes.get(id(node))
        full_name = full_name_of(node) if scope is not None else None
        if scope is None or full_name is None:
            return set()
        assignments = self._bindings_of(scope, full_name)
        for assignment in assignments:
            if assignment.node is not None and _binds(node, assignment):
                return self._names_of(assignment, full_name)
        results: set[str] = set()
        for assignment in assignments:
            results |= self._names_of(assignment, full_name)
        return results

    def _bindings_of(self, scope: Scope, full_name: str) -> list[Assignment]:
        """The bindings ``scope`` sees of the longest prefix of the dotted ``full_name`` that it binds (remembered:
        the scopes are complete after the walk, and a file reads the same names again and again)."""
        key = (id(scope), full_name)
        found = self._bindings.get(key)
        if found is None:
            found = []
            prefix = full_name
            while prefix:
                if prefix in scope:
                    found = scope[prefix]
                    break
                prefix = prefix.rpartition(".")[0]
            self._bindings[key] = found
        return found

    def _names_of(self, assignment: Assignment, full_name: str) -> AbstractSet[str]:
        """What ``full_name`` (starting with the name ``assignment`` binds) stands for, through an alias (what it
        stands for through the binding itself is remembered)."""
        targets = self.aliases.get(id(assignment))
        if targets is not None:
            rest = full_name[len(assignment.name) :]
            return {target + rest for target in targets}
        key = (id(assignment), full_name)
        found = self._binding_names.get(key)
        if found is None:
            found = self._binding_names[key] = frozenset(assignment.qualified_names(full_name))
        return found


_HANDLERS = {
    cst.FunctionDef: Resolver._function,
    cst.Lambda: Resolver._lambda,
    cst.Param: Resolver._param,
    cst.ClassDef: Resolver._class,
    cst.ListComp: Resolver._comprehension,
    cst.SetComp: Resolver._comprehension,
    cst.GeneratorExp: Resolver._comprehension,
    cst.DictComp: Resolver._comprehension,
    cst.Import: Resolver._import,
    cst.ImportFrom: Resolver._import,
    cst.Attribute: Resolver._attribute,
    cst.Arg: Resolver._arg,
    cst.Global: Resolver._global,
    cst.Nonlocal: Resolver._global,
    cst.Assign: Resolver._assign,
    cst.AnnAssign: Resolver._target,
    cst.AugAssign: Resolver._target,
    cst.For: Resolver._target,
    cst.CompFor: Resolver._target,
    cst.NamedExpr: Resolver._target,
    cst.AsName: Resolver._as_name,
    cst.MatchAs: Resolver._match_name,
    cst.MatchStar: Resolver._match_name,
    cst.MatchMapping: Resolver._match_mapping,
    cst.Name: Resolver._name,
}


def resolve(module: cst.Module) -> Resolver:
    """Walk ``module`` once and resolve its names."""
    resolver = Resolver()
    resolver.walk(module)
    resolver.finish()
    return resolver


def iter_scopes(resolver: Resolver) -> Iterator[Scope]:
    """Every distinct scope of the walked module (module scope first)."""
    seen: set[int] = set()
    for scope in resolver._scopes.values():
        if id(scope) not in seen:
            seen.add(id(scope))
            yield scope
