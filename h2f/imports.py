"""Removing the Haiku imports a migration left unused, without libcst's scope analysis of the migrated tree.

libcst's :class:`~libcst.codemod.visitors.RemoveImportsVisitor` decides "unused" with a full scope analysis of
the migrated module (and copies the tree to attach it): that cost more than the whole migration. An import is
unused here when the name it binds appears nowhere else in the module: not as a name, not as a word of a string
other than a docstring (string annotations, ``__all__``). That is conservative: a name that is only shadowed
keeps its import, which costs nothing at run time; an import still in use is never removed.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.codemod.visitors._add_imports import _GatherTopImportsBeforeStatements

from h2f.traversal import NODE_TYPES, TOKENS, concrete_types, fields_to_visit, known_fields

_WORD = re.compile(r"[A-Za-z_]\w*")


class _UsedNames:
    """Every identifier of a module outside its import statements, and every word of its strings."""

    def __init__(self, module: cst.Module) -> None:
        self.names: set[str] = set()
        self.imports: list[cst.Import | cst.ImportFrom] = []
        self._known = known_fields(TOKENS)
        self._collect(module)

    # One recursive method rather than a visitor's hooks (it runs on every node of the migrated module); the
    # child fields are looped over as in :mod:`h2f.traversal`'s walks, tokens skipped.
    def _collect(self, node: cst.CSTNode) -> None:
        kind = type(node)
        if kind is cst.Name:
            self.names.add(node.value)  # type: ignore[attr-defined]
            return
        if kind is cst.Attribute or kind is cst.Arg:  # ``nn.Module`` uses ``nn``, not ``Module``; a keyword, nothing
            self._collect(node.value)  # type: ignore[attr-defined]
            return
        if kind is cst.Import or kind is cst.ImportFrom:
            self.imports.append(node)  # type: ignore[arg-type]
            return
        if kind is cst.SimpleString or kind is cst.FormattedStringText:
            self.names.update(_WORD.findall(node.value))  # type: ignore[attr-defined]
            return
        if kind is cst.Expr and type(node.value) in (cst.SimpleString, cst.ConcatenatedString):  # type: ignore[attr-defined]
            return  # a docstring uses nothing
        fields = self._known.get(kind)
        for field in fields_to_visit(node, TOKENS) if fields is None else fields:
            value = getattr(node, field)
            if type(value) in NODE_TYPES:
                if type(value) not in TOKENS:
                    self._collect(value)
            elif type(value) is tuple or type(value) is list:
                for item in value:
                    if type(item) in NODE_TYPES and type(item) not in TOKENS:
                        self._collect(item)


def bound_name(alias: cst.ImportAlias, statement: cst.Import | cst.ImportFrom) -> str:
    """The name an import alias binds: ``hk`` for ``import haiku as hk``, ``jax`` for ``import jax.numpy``."""
    if alias.asname is not None:
        return alias.evaluated_alias or ""
    name = alias.evaluated_name
    return name.split(".", 1)[0] if isinstance(statement, cst.Import) else name


#: The expressions and simple statements but the imports (type tests: these visitors ask of every node).
_NO_IMPORT_INSIDE = concrete_types(cst.BaseExpression, cst.BaseSmallStatement) - {cst.Import, cst.ImportFrom}
_COMPOUND_STATEMENTS = concrete_types(cst.BaseCompoundStatement)
_IMPORTS = frozenset({cst.Import, cst.ImportFrom})


def _outside_imports(node: cst.CSTNode) -> bool:
    """An expression or simple statement that is no import: nothing in it can be an import statement."""
    return type(node) in _NO_IMPORT_INSIDE


class _StatementsOnly(cst.CSTTransformer):
    """Mixin for the import visitors: do not enter expressions, where no import statement can be, and skip
    libcst's matcher machinery: its search for matcher decorators (it walks ``dir(self)``, some 1,500 bound
    methods, on every construction) and its bookkeeping on every node (these visitors have no decorated hooks,
    so plain :class:`~libcst.CSTTransformer` dispatch calls the same hooks)."""

    def __dir__(self) -> list[str]:
        return []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if _outside_imports(node) or type(node) in _IMPORTS:
            return False  # (the hooks on an import statement are on leaving it: nothing inside it changes)
        return cst.CSTTransformer.on_visit(self, node)

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        if _outside_imports(original_node):
            return updated_node
        return cst.CSTTransformer.on_leave(self, original_node, updated_node)  # type: ignore[return-value]

    # No visit_<Node>_<attribute> hooks: skip the look-up of one per child attribute.
    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass


def _is_import_line(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and isinstance(
        statement.body[0], (cst.Import, cst.ImportFrom)
    )


def _is_import_only_line(statement: cst.BaseStatement) -> bool:
    """libcst's ``m.SimpleStatementLine(body=[m.ImportFrom() | m.Import()])``, without the matcher machinery."""
    return (
        type(statement) is cst.SimpleStatementLine
        and len(statement.body) == 1
        and type(statement.body[0]) in (cst.Import, cst.ImportFrom)
    )


def _skip_first(module: cst.Module) -> bool:
    """libcst's ``_skip_first`` (the module starts with a docstring or a ``__strict__`` flag, above which no import
    goes) without its matcher of the whole module, which cost more than the rest of adding the imports."""
    first = module.body[0] if module.body else None
    if type(first) is not cst.SimpleStatementLine or len(first.body) != 1:
        return False
    small = first.body[0]
    if type(small) is cst.Expr:
        return type(small.value) is cst.SimpleString
    return (
        type(small) is cst.Assign
        and len(small.targets) == 1
        and type(small.targets[0].target) is cst.Name
        and small.targets[0].target.value == "__strict__"
    )


class _LeadingImports(_GatherTopImportsBeforeStatements):
    """libcst's gatherer of the imports above the first other statement, without the matcher search."""

    def __dir__(self) -> list[str]:
        return []

    def leave_Module(self, original_node: cst.Module) -> None:
        # _GatherTopImportsBeforeStatements.leave_Module (libcst 1.x) with type tests for its matchers
        for statement in original_node.body[1 if _skip_first(original_node) else 0 :]:
            if not _is_import_only_line(statement):
                break
            self.all_imports.append(statement.body[0])  # type: ignore[attr-defined,arg-type]
        for statement in self.all_imports:
            if type(statement) is cst.Import:
                self._handle_Import(statement)
            else:
                self._handle_ImportFrom(statement)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1024)
def _import_line(text: str, encoding: str, default_indent: str, default_newline: str) -> cst.BaseStatement:
    """An import statement parsed from ``text`` for a module of that layout (libcst's nodes are immutable: one
    parse serves every file of the run with that layout; libcst built a parser config, some 0.3 ms, per line)."""
    config = cst.PartialParserConfig(encoding=encoding, default_indent=default_indent, default_newline=default_newline)
    return cst.parse_statement(text, config=config)


def _from_import(module: str, aliases: list[tuple[str, str | None]]) -> str:
    names = ", ".join(obj if alias is None else f"{obj} as {alias}" for obj, alias in aliases)
    return f"from {module} import {names}"


class AddImports(_StatementsOnly, AddImportsVisitor):
    """:class:`AddImportsVisitor` that enters only the module's import lines (it changes nothing else: it merges
    into the leading ``from … import`` statements and inserts at the top); visit the module directly."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        if type(node) in _COMPOUND_STATEMENTS or (type(node) is cst.SimpleStatementLine and not _is_import_line(node)):
            return False
        return super().on_visit(node)

    def _split_module(
        self, orig_module: cst.Module, updated_module: cst.Module
    ) -> tuple[list[cst.BaseStatement], list[cst.BaseStatement], list[cst.BaseStatement]]:
        # AddImportsVisitor._split_module (libcst 1.x) with type tests for its matchers: the statements above the
        # leading imports (a docstring), those imports, and the rest.
        before = end = 1 if _skip_first(orig_module) else 0
        while end < len(orig_module.body) and _is_import_only_line(orig_module.body[end]):
            end += 1
        body = list(updated_module.body)
        return body[:before], body[before:end], body[end:]

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        # AddImportsVisitor.leave_Module (libcst 1.x), the import lines it adds parsed by _import_line
        if not (self.module_imports or self.module_mapping or self.module_aliases or self.alias_mapping):
            return updated_node
        before, imports, after = self._split_module(original_node, updated_node)
        after = self._insert_empty_line(after)
        by_module: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        for module, aliases in self.alias_mapping.items():
            by_module[module].extend(aliases)
        for module, objects in self.module_mapping.items():
            by_module[module].extend([(obj, None) for obj in objects])
        mapping = {module: sorted(aliases) for module, aliases in by_module.items()}  # type: ignore[type-var]
        layout = (updated_node.encoding, updated_node.default_indent, updated_node.default_newline)
        return updated_node.with_changes(
            body=(
                *before,
                *[
                    _import_line(_from_import(module, aliases), *layout)
                    for module, aliases in mapping.items()
                    if module == "__future__"
                ],
                *imports,
                *[_import_line(f"import {module}", *layout) for module in sorted(self.module_imports)],
                *[
                    _import_line(f"import {module} as {asname}", *layout)
                    for module, asname in self.module_aliases.items()
                ],
                *[
                    _import_line(_from_import(module, aliases), *layout)
                    for module, aliases in mapping.items()
                    if module != "__future__"
                ],
                *after,
            )
        )

    def visit_Module(self, node: cst.Module) -> None:
        # AddImportsVisitor.visit_Module, with the gatherer above (libcst 1.x): drop what is already imported.
        # It reads only the leading imports (a docstring may come first): show it no more than those.
        end = 1
        while end < len(node.body) and _is_import_line(node.body[end]):
            end += 1
        gatherer = _LeadingImports(self.context)
        gatherer.leave_Module(node.with_changes(body=node.body[:end]))  # its only hook: no traversal needed
        self.all_imports = gatherer.all_imports
        self.module_imports = self.module_imports - gatherer.module_imports
        for module, alias in gatherer.module_aliases.items():
            if self.module_aliases.get(module) == alias:
                del self.module_aliases[module]
        for module, aliases in gatherer.alias_mapping.items():
            for pair in aliases:
                if pair in self.alias_mapping.get(module, ()):
                    self.alias_mapping[module].remove(pair)
                    if not self.alias_mapping[module]:
                        del self.alias_mapping[module]
        for module, imports in gatherer.object_mapping.items():
            if module not in self.module_mapping:
                continue
            if "*" in imports:
                del self.module_mapping[module]
            else:
                self.module_mapping[module] = self.module_mapping[module] - imports
                if not self.module_mapping[module]:
                    del self.module_mapping[module]


class RemoveUnusedImports(_StatementsOnly, RemoveImportsVisitor):
    """:class:`RemoveImportsVisitor` (same scheduling through the codemod context, same statement surgery) with
    "unused" decided by name occurrence; visit the module directly (``module.visit(...)``), no metadata."""

    METADATA_DEPENDENCIES = ()

    def visit_Module(self, node: cst.Module) -> None:
        used = _UsedNames(node)
        self._unused_imports = {
            alias: statement
            for statement in used.imports
            if not isinstance(statement.names, cst.ImportStar)
            for alias in statement.names
            if bound_name(alias, statement) not in used.names
        }
        # Enter only where an unused import is: nowhere, or only the top-level lines when they hold them all.
        top = {
            id(statement) for line in node.body if isinstance(line, cst.SimpleStatementLine) for statement in line.body
        }
        self._enter_blocks = any(id(statement) not in top for statement in self._unused_imports.values())
        self._holders = {id(statement) for statement in self._unused_imports.values()}
        self._dropped_lines: dict[int, cst.SimpleStatementLine] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        if type(node) is not cst.Module and (
            not self._unused_imports
            or (not self._enter_blocks and type(node) in _COMPOUND_STATEMENTS)
            or (type(node) is cst.SimpleStatementLine and not any(id(small) in self._holders for small in node.body))
        ):
            return False  # nothing to remove inside
        return super().on_visit(node)

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        if not updated_node.body:  # the whole line goes: what stood above it must not go with it
            self._dropped_lines[id(original_node)] = original_node
        return updated_node

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        """Give the blank lines and comments above a removed top-level import line to the statement after it."""
        if not self._dropped_lines:
            return updated_node
        body = list(updated_node.body)
        kept = 0
        pending: list[cst.EmptyLine] = []
        for index, statement in enumerate(original_node.body):
            dropped = self._dropped_lines.get(id(statement))
            if dropped is not None:
                # The first removed line of a run keeps its blank lines too; those after it, their comments.
                first = not pending
                pending.extend(line for line in dropped.leading_lines if first or line.comment is not None)
                if dropped.trailing_whitespace.comment is not None:
                    pending.append(cst.EmptyLine(comment=dropped.trailing_whitespace.comment))
                continue
            if (pending or kept == 0) and kept < len(body):
                own = body[kept].leading_lines
                if own and all(line.comment is None for line in pending):
                    pending = []  # the next statement's own blank lines suffice
                leading = [*pending, *own]
                if kept == 0 and index > 0:  # it now starts the file
                    while leading and leading[0].comment is None:
                        leading.pop(0)
                body[kept] = body[kept].with_changes(leading_lines=leading)
                pending = []
            kept += 1
        comments = [line for line in pending if line.comment is not None]
        return updated_node.with_changes(body=body, footer=[*comments, *updated_node.footer])
