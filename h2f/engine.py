"""The codemod engine: migrate one source text.

``migrate_source`` parses the text once, builds the shared :class:`~h2f.analysis.FileAnalysis` (one walk records
parents, scopes and bindings: :mod:`h2f.resolver`), and runs every selected rule in a single traversal
(:class:`~h2f.context.RuleDispatcher`). It then fixes the imports, and refuses output that does not parse.
Text that never mentions haiku is returned as it came, without being parsed.
"""

from __future__ import annotations

import dataclasses

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from h2f.analysis import FileAnalysis, mentions_haiku
from h2f.context import MigrationContext, RuleDispatcher
from h2f.diagnostics import Diagnostic
from h2f.imports import AddImports, RemoveUnusedImports
from h2f.project import ProjectIndex, mentions_project_transform
from h2f.rule import TARGETS, select_rules
from h2f.skip import SkippingDispatcher, SkipPlan, find_marks

#: Larger sources are refused by the file driver and skipped by the project index: parsing and analysing them
#: takes minutes and gigabytes (1 MB is ten times any real model file).
MAX_SOURCE_BYTES = 1_000_000


class MigrationError(Exception):
    """The file could not be migrated at all; it must be left untouched."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic


class UnsupportedTarget(ValueError):
    """The requested target is not built yet."""


@dataclasses.dataclass(frozen=True)
class MigrationResult:
    """What migrating one source text produced."""

    source: str
    code: str
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the migrated code differs from the source."""
        return self.code != self.source


@dataclasses.dataclass(frozen=True)
class Options:
    """What to migrate to, and which rules to run (by name or code; empty ``select`` means all)."""

    target: str = "linen"
    select: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()
    #: Transforms other files of the run export (see :mod:`h2f.project`).
    project: ProjectIndex = dataclasses.field(default_factory=dict)

    def may_need_migration(self, source: str) -> bool:
        """Cheap pre-filter, no parse: can ``source`` use Haiku or a transform another file exports?"""
        return mentions_haiku(source) or mentions_project_transform(source, self.project)


def check_target(target: str) -> None:
    """Raise :class:`UnsupportedTarget` unless ``target`` can be migrated to."""
    if target not in TARGETS:
        raise UnsupportedTarget(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")
    if not select_rules(target):
        raise UnsupportedTarget(f"--to {target} is not supported yet (only: linen)")


def migrate_source(source: str, options: Options = Options(), path: str = "<string>") -> MigrationResult:
    """Migrate the Python ``source`` read from ``path``; never raises for Haiku-free text."""
    check_target(options.target)
    if not options.may_need_migration(source):
        return MigrationResult(source, source)
    marks = find_marks(source)
    if marks.skip_file:
        return MigrationResult(source, source)
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise MigrationError(_parse_error(source, path, error)) from None
    try:
        wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
        analysis = FileAnalysis.build(wrapper, options.project)
        if not analysis.haiku_aliases and not analysis.transforms:
            return MigrationResult(source, source)
        codemod_context = CodemodContext(filename=path, full_module_name=None)
        ctx = MigrationContext(path=path, options=options, wrapper=wrapper, analysis=analysis, codemod=codemod_context)
        rules = [rule(ctx) for rule in select_rules(options.target, options.select, options.ignore)]
        transforms = frozenset(transform.name for transform in analysis.transforms.values())
        plan = SkipPlan(wrapper, marks, path, transforms) if marks.lines else None
        migrated = wrapper.visit(RuleDispatcher(ctx, rules) if plan is None else SkippingDispatcher(ctx, rules, plan))
        migrated = _fix_imports(migrated, ctx)
        conflict = plan.conflict(migrated) if plan is not None else None
        diagnostics = tuple(sorted(plan.diagnostics(ctx.diagnostics) if plan is not None else ctx.diagnostics))
    except Exception as error:  # an h2f bug must not lose the user's file
        raise MigrationError(
            Diagnostic(path, 1, 1, "H2F003", f"internal error ({type(error).__name__}: {error})", "error")
        ) from error
    if conflict is not None:
        raise MigrationError(conflict)
    code = migrated.code
    if code == source:
        return MigrationResult(source, source, diagnostics)
    try:
        compile(code, path, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise MigrationError(
            Diagnostic(path, error.lineno or 1, error.offset or 1, "H2F002", f"migrated code does not parse: {error.msg}", "error")
        ) from None
    return MigrationResult(source, code, diagnostics)


def _parse_error(source: str, path: str, error: cst.ParserSyntaxError) -> Diagnostic:
    """H2F001 at the position Python itself gives (libcst's is coarser), with libcst's message as fallback."""
    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as syntax_error:
        return Diagnostic(
            path, syntax_error.lineno or 1, syntax_error.offset or 1, "H2F001", f"cannot parse: {syntax_error.msg}", "error"
        )
    return Diagnostic(path, error.raw_line, error.raw_column + 1, "H2F001", f"cannot parse: {error.message}", "error")


def _fix_imports(module: cst.Module, ctx: MigrationContext) -> cst.Module:
    """Add the imports rules asked for; drop Haiku imports that nothing uses any more."""
    # Visited directly: neither visitor needs metadata, and ``transform_module`` would copy the tree.
    if ctx.codemod.scratch.get(AddImportsVisitor.CONTEXT_KEY):
        module = module.visit(AddImports(ctx.codemod))
    if not module.deep_equals(ctx.analysis.module):
        for alias in ctx.analysis.haiku_imports:
            RemoveImportsVisitor.remove_unused_import(ctx.codemod, alias.module, alias.obj, alias.asname)
        module = module.visit(RemoveUnusedImports(ctx.codemod))
    return module
