"""``# h2f: skip`` and ``# h2f: skip-file``: code the user wants left exactly as written.

- A comment ``# h2f: skip-file`` anywhere in a file (on its own line or after code) leaves the whole file
  untouched, with no diagnostics.
- A comment ``# h2f: skip`` at the end of a statement's line leaves that statement as written, byte for byte,
  and silences the diagnostics inside it. On a compound statement's header line (``def``, ``class``, ``if``,
  ``with``, ``for``, ... or one of its decorators) it covers the whole statement, body included. The rest of the
  file is migrated; the Haiku import stays as long as a skipped statement uses it.
- The skip is honoured only when it is faithful, that is when, in the migrated file,
  1. the skipped statement comes out unchanged (a rule that rewrites the code around it, such as a
     ``hk.Module`` constructor turned into dataclass fields, must not have moved or rewritten it);
  2. every name it reads that the file defines is still defined, by the same statement or ``def``/``class``
     header as before (so ``params = model.init(...)  # h2f: skip`` is refused when ``model`` becomes a Linen
     module); function parameters, imports and loop variables need only still exist, unless the import is of
     something another file of the run migrates (a transform, an initializer, a module class);
  3. when it binds a transform (``model = hk.transform(f)  # h2f: skip``), no use of that name elsewhere is
     rewritten (the rules rewrite a transform's ``init``/``apply`` calls by name);
  4. when it defines a Haiku module class (``class Block(hk.Module):  # h2f: skip``), nothing outside the skipped
     code builds or subclasses it (naming it in an annotation, or testing against it with ``isinstance``, is no
     use of it as a module), or nothing is migrated at all: whatever builds it is a transformed function or another module,
     which the migration turns into Flax, and a Flax module cannot build a Haiku one. Another file of the run
     whose migration rewrites code that builds the class is refused the same way (:func:`imported_skip_conflict`).
  Otherwise the file is left untouched and reported as H2F004 (an error). Values the skipped statement computes
  flow into the migrated code as they are. A ``# h2f: skip`` comment anywhere else (on a line of its own,
  inside a bracketed expression) covers nothing and is reported as H2F005.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import libcst as cst
from libcst.metadata import BuiltinAssignment, ParentNodeProvider, PositionProvider, ScopeProvider

from h2f.context import RuleDispatcher, StartPositions
from h2f.diagnostics import Diagnostic
from h2f.marks import SKIP, Marks
from h2f.project import SKIPPED_CLASS_EXPORT
from h2f.traversal import children, walk

if TYPE_CHECKING:
    from h2f.analysis import FileAnalysis


def _is_skip(whitespace: cst.TrailingWhitespace | None) -> bool:
    return whitespace is not None and whitespace.comment is not None and bool(SKIP.search(whitespace.comment.value))


def _header_comments(node: cst.CSTNode) -> list[cst.TrailingWhitespace]:
    """The trailing whitespace (with its comment) of the lines that name ``node``: its line, or its header
    line and its decorators' lines."""
    if isinstance(node, cst.SimpleStatementLine):
        return [node.trailing_whitespace]
    if not isinstance(node, cst.BaseCompoundStatement):
        return []
    body = node.body
    found = [body.header if isinstance(body, cst.IndentedBlock) else body.trailing_whitespace]
    found += [decorator.trailing_whitespace for decorator in getattr(node, "decorators", ())]
    return found


class SkipPlan:
    """The statements of one parsed file that ``# h2f: skip`` covers, and the comments that cover nothing."""

    def __init__(
        self,
        wrapper: cst.MetadataWrapper,
        marks: Marks,
        path: str,
        transforms: frozenset[str] = frozenset(),
        analysis: FileAnalysis | None = None,
        imported: frozenset[str] = frozenset(),
    ) -> None:
        self.path = path
        self.module = wrapper.module
        positions = wrapper.resolve(PositionProvider)
        self.statements: list[cst.CSTNode] = []
        used: set[int] = set()
        for node in _statements(wrapper.module):
            comments = [ws for ws in _header_comments(node) if _is_skip(ws)]
            if comments:
                self.statements.append(node)
                used.update(positions[ws.comment].start.line for ws in comments if ws.comment is not None)
        self.ids = {id(node) for node in self.statements}
        self.ranges = [(positions[node].start, positions[node].end.line) for node in self.statements]
        self.stray = [(line, column) for line, column in marks.lines if line not in used]
        self.uses, used_by = _links(wrapper, self.statements)
        #: Uses elsewhere of the transforms a skipped statement binds: the rules rewrite those by name.
        self.used_by = [use for use in used_by if use[1] in transforms]
        #: (statement index, name) of each Haiku module class a skipped statement defines that code elsewhere may
        #: build or subclass (more than name it in an annotation or test against it with ``isinstance``).
        self.built_classes = self._built_classes(analysis) if analysis is not None else []
        #: Names skipped statements read that the file imports from another file the run migrates.
        self.imported_uses = sorted((index, name) for index, name, definition in self.uses if name in imported)

    def _built_classes(self, analysis: FileAnalysis) -> list[tuple[int, str]]:
        """:attr:`built_classes`, of the file ``analysis`` reads."""
        index_of = {id(statement): index for index, statement in enumerate(self.statements)}
        found = []
        for name, info in analysis.module_classes.items():
            index = next(
                (index_of[id(node)] for node in [info.node, *analysis.ancestors(info.node)] if id(node) in index_of),
                None,
            )
            if index is not None and analysis.builders(analysis.reads_of(name, info.node), self.ids):
                found.append((index, name))
        return sorted(found)

    def covers(self, diagnostic: Diagnostic) -> bool:
        """Whether ``diagnostic`` is inside a skipped statement."""
        return any(start.line <= diagnostic.line <= end for start, end in self.ranges)

    def diagnostics(self, found: list[Diagnostic]) -> list[Diagnostic]:
        """``found`` without those inside skipped statements, plus H2F005 for each stray skip comment."""
        kept = [diagnostic for diagnostic in found if not self.covers(diagnostic)]
        message = "'# h2f: skip' covers nothing here: put it at the end of a statement's line (or of a compound statement's header)"
        return kept + [Diagnostic(self.path, line, column + 1, "H2F005", message) for line, column in self.stray]

    def conflict(self, migrated: cst.Module) -> Diagnostic | None:
        """H2F004 when the migrated module does not keep every skipped statement as written and working."""
        if not self.statements or migrated is self.module:  # (the engine hands back the very module if unchanged)
            return None
        if self.built_classes:
            index, name = self.built_classes[0]
            return self._conflict(
                index, f"it defines the Haiku module class {name!r}, which code the migration turns into Flax builds"
            )
        if self.imported_uses:
            index, name = self.imported_uses[0]
            return self._conflict(index, f"it uses {name!r}, which another file of the run migrates to Flax")
        kept = [node for node in _statements(migrated) if any(_is_skip(ws) for ws in _header_comments(node))]
        wanted, found = [_code(node) for node in self.statements], [_code(node) for node in kept]
        if wanted != found:  # the skipped statements, unchanged and in the same order (the checks below pair them)
            index = next((i for i, (a, b) in enumerate(zip(wanted, found)) if a != b), min(len(wanted), len(found)))
            reason = "the migration of the code around it rewrites or moves this statement"
            return self._conflict(min(index, len(wanted) - 1), reason)
        try:
            uses, _ = _links(cst.MetadataWrapper(migrated, unsafe_skip_copy=True), kept)
        except Exception:  # scope analysis failing on output is a reason to refuse, not to crash
            uses = set()
        names = {(index, name) for index, name, _ in uses}
        for index, name, _ in sorted(self.uses - uses, key=lambda use: (use[0], use[1], use[2] or "")):
            if (index, name) not in names:
                return self._conflict(index, f"it uses {name!r}, which the migration removes or renames")
            return self._conflict(index, f"it uses {name!r}, whose definition the migration rewrites")
        statements = Counter(_key(node) for node in _statements(migrated))
        for index, name, user in self.used_by:
            if user not in statements:
                return self._conflict(index, f"it binds the transform {name!r}, whose uses the migration rewrites")
        return None

    def _conflict(self, index: int, reason: str) -> Diagnostic:
        """H2F004 at the start of the ``index``-th skipped statement."""
        start = self.ranges[index][0]
        message = (
            f"'# h2f: skip' cannot be honoured: {reason}; the file is left untouched "
            "(skip the enclosing statement or the whole file with '# h2f: skip-file')"
        )
        return Diagnostic(self.path, start.line, start.column + 1, "H2F004", message, "error")


def imported_skip_conflict(
    analysis: Any, migrated: cst.Module, path: str, plan: SkipPlan | None = None
) -> Diagnostic | None:
    """H2F004 when code the migration rewrites (into ``migrated``; outside the statements the file's own ``plan``
    skips) builds a module class another file of the run keeps Haiku with ``# h2f: skip`` (condition 4 across
    files): the importing file is left untouched."""
    kept = plan.ids if plan is not None else set()
    for found in analysis.kept_classes():
        if found.exported.kind != SKIPPED_CLASS_EXPORT:
            continue
        for builder in analysis.rewritten_builders(found.reads, migrated, kept):
            start = StartPositions(analysis.module).start(builder) or (1, 1)
            name = found.exported.name
            message = (
                f"'# h2f: skip' (or skip-file) keeps {name} Haiku in {found.defined_in}, but this code, which the "
                f"migration turns into Flax, builds {found.described}, and a Flax module cannot hold a Haiku one; the "
                f"file is left untouched (migrate {name}, or skip this code too)"
            )
            return Diagnostic(path, start[0], start[1], "H2F004", message, "error")
    return None


def _statements(module: cst.Module) -> list[cst.CSTNode]:
    """Every statement of ``module``, outer before inner."""
    return [
        node
        for node in walk(module, enter=lambda node: not isinstance(node, cst.SimpleStatementLine))
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
    ]


def _code(node: cst.CSTNode) -> str:
    """The statement's own code (without the blank lines and comments above it)."""
    if hasattr(node, "leading_lines"):
        node = node.with_changes(leading_lines=())
    return cst.Module(body=[node]).code  # type: ignore[list-item]


def _key(node: cst.CSTNode) -> str:
    """What identifies a statement: its code, or for a block statement its header (body left out)."""
    if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.For, cst.While, cst.With, cst.If)):
        body = cst.IndentedBlock(body=[cst.SimpleStatementLine(body=[cst.Pass()])])
        changes: dict[str, Any] = {"body": body}
        if isinstance(node, (cst.For, cst.While, cst.If)):
            changes["orelse"] = None
        node = node.with_changes(**changes)
    return _code(node)


def _enclosing(node: cst.CSTNode, parents: Any) -> cst.CSTNode | None:
    """The innermost statement containing ``node``."""
    current: cst.CSTNode | None = node
    while current is not None and not isinstance(current, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
        current = parents.get(current)
    return current


def _definition(assignment: Any, parents: Any) -> str | None:
    """What a name's value depends on: the statement (or def/class header) binding it; ``None`` for function
    parameters, imports and loop targets, whose meaning a migration that keeps the name does not change."""
    node = assignment.node
    if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        return _key(node)
    if isinstance(node, (cst.Param, cst.Import, cst.ImportFrom)):
        return None
    statement = _enclosing(node, parents)
    return _key(statement) if isinstance(statement, cst.SimpleStatementLine) else None


def _links(
    wrapper: cst.MetadataWrapper, statements: list[cst.CSTNode]
) -> tuple[set[tuple[int, str, str | None]], list[tuple[int, str, str]]]:
    """How the ``statements`` are tied to the rest of the file.

    ``uses``: ``(statement index, name, definition)`` for each name a statement reads that the file defines;
    ``used_by``: ``(statement index, name, key of the using statement)`` for each use, outside the statements,
    of a name one of them defines.
    """
    scopes = wrapper.resolve(ScopeProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    owner: dict[int, int] = {}
    for index, statement in enumerate(statements):
        stack = [statement]
        while stack:
            node = stack.pop()
            owner.setdefault(id(node), index)
            stack.extend(children(node))
    uses: set[tuple[int, str, str | None]] = set()
    used_by: list[tuple[int, str, str]] = []
    for scope in {scope for scope in scopes.values() if scope is not None}:
        for access in scope.accesses:
            index = owner.get(id(access.node))
            if index is None:
                continue
            for referent in access.referents:
                if not isinstance(referent, BuiltinAssignment):
                    uses.add((index, referent.name, _definition(referent, parents)))
        for assignment in scope.assignments:
            index = owner.get(id(assignment.node))
            if index is None or isinstance(assignment, BuiltinAssignment):
                continue
            for access in assignment.references:
                user = _enclosing(access.node, parents)
                if id(access.node) not in owner and user is not None:
                    used_by.append((index, assignment.name, _key(user)))
    return uses, used_by


class SkippingDispatcher(RuleDispatcher):
    """The rule traversal, except that each skipped statement comes out as it went in."""

    def __init__(self, ctx: Any, rules: list[Any], plan: SkipPlan) -> None:
        super().__init__(ctx, rules)
        self.plan = plan

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        result = super().on_leave(original_node, updated_node)
        return original_node if id(original_node) in self.plan.ids else result


def hides_transform(analysis: Any, transform: Any) -> bool:
    """Whether ``# h2f: skip`` covers the statement binding ``transform`` or the ``def`` of its function: then the
    transform stays Haiku, and other files of the run must not have its call sites rewritten (see
    :mod:`h2f.project`)."""
    binding = transform.binding
    if isinstance(binding, cst.Assign):
        binding = analysis.parents.get(binding)
    function = transform.function if isinstance(transform.function, cst.FunctionDef) else None
    return any(node is not None and skipped(node) for node in (binding, function))


def skipped(statement: cst.CSTNode) -> bool:
    """Whether a ``# h2f: skip`` at the end of the statement's line (or of its header) covers ``statement``."""
    return any(_is_skip(ws) for ws in _header_comments(statement))
