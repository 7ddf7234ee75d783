"""The libcst half of the engine: parse, analyse, run the rules in one traversal, fix the imports, check the output.

Imported by :func:`h2f.engine.migrate_source` on the first text that may need migrating, so that runs whose every
file is skipped (no Haiku) or answered by the cache (:mod:`h2f.cache`) never load libcst or the rules: a
pre-commit hook over Haiku-free files, a cached CI re-run.
"""

from __future__ import annotations

import functools

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from h2f.analysis import FileAnalysis
from h2f.context import MigrationContext, RuleDispatcher
from h2f.diagnostics import Diagnostic
from h2f.engine import MigrationError, MigrationResult, Options
from h2f.imports import AddImports, RemoveUnusedImports
from h2f.marks import find_marks
from h2f.rule import bridge_rules, select_rules
from h2f.skip import SkippingDispatcher, SkipPlan, imported_skip_conflict
from h2f.traversal import TOKENS, fast_transform


def migrate_module(source: str, options: Options, path: str, *, texts: bool = True) -> MigrationResult:
    """Migrate ``source`` (which mentions Haiku or a transform of the project) with libcst; see
    :func:`h2f.engine.migrate_source` (``texts``: generate the migrated code)."""
    marks = find_marks(source)
    if marks.skip_file:
        return MigrationResult(source, source)
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise MigrationError(_parse_error(source, path, error)) from None
    try:
        wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
        analysis = FileAnalysis.build(wrapper, options.project, path)
        if not (
            analysis.haiku_aliases
            or analysis.transforms
            or analysis.exports_read_through_modules
            or analysis.unfollowed_imports
            or analysis.unpacked_imported_factories
        ):
            return MigrationResult(source, source)
        codemod_context = CodemodContext(filename=path, full_module_name=None)
        ctx = MigrationContext(path=path, options=options, wrapper=wrapper, analysis=analysis, codemod=codemod_context)
        ctx.bridge = options.target == "nnx" and ctx.nnx_plan.bridged
        chosen = bridge_rules if ctx.bridge else functools.partial(select_rules, options.target)
        rules = [rule(ctx) for rule in chosen(options.select, options.ignore)]
        transforms = frozenset(transform.name for transform in analysis.transforms.values())
        imported = analysis.imported_migrated_names() if marks.lines else frozenset()
        plan = SkipPlan(wrapper, marks, path, transforms, analysis, imported) if marks.lines else None
        dispatcher = RuleDispatcher(ctx, rules) if plan is None else SkippingDispatcher(ctx, rules, plan)
        migrated = fast_transform(module, dispatcher, dispatcher.inert_types(), dispatcher.busy())
        if migrated is not module and migrated.deep_equals(module):
            migrated = module  # rules rebuilt nodes as they were
        # The imports decide no verdict (a module no rule changed keeps its imports), but a skip plan's check does.
        if migrated is not module and (texts or plan is not None):
            migrated = _fix_imports(migrated, ctx)
        conflict = plan.conflict(migrated) if plan is not None else None
        if conflict is None and migrated is not module:
            conflict = imported_skip_conflict(analysis, migrated, path, plan)
        diagnostics = tuple(sorted(plan.diagnostics(ctx.diagnostics) if plan is not None else ctx.diagnostics))
    except Exception as error:  # an h2f bug must not lose the user's file
        raise MigrationError(
            Diagnostic(path, 1, 1, "H2F003", f"internal error ({type(error).__name__}: {error})", "error")
        ) from error
    if conflict is not None:
        raise MigrationError(conflict)
    if not texts:
        return MigrationResult(source, source if migrated is module else None, diagnostics)
    code = migrated.code
    if code == source:
        return MigrationResult(source, source, diagnostics)
    try:
        compile(code, path, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise MigrationError(
            Diagnostic(
                path,
                error.lineno or 1,
                error.offset or 1,
                "H2F002",
                f"migrated code does not parse: {error.msg}",
                "error",
            )
        ) from None
    return MigrationResult(source, code, diagnostics)


def _parse_error(source: str, path: str, error: cst.ParserSyntaxError) -> Diagnostic:
    """H2F001 at the position Python itself gives (libcst's is coarser), with libcst's message as fallback."""
    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as syntax_error:
        return Diagnostic(
            path,
            syntax_error.lineno or 1,
            syntax_error.offset or 1,
            "H2F001",
            f"cannot parse: {syntax_error.msg}",
            "error",
        )
    return Diagnostic(path, error.raw_line, error.raw_column + 1, "H2F001", f"cannot parse: {error.message}", "error")


def _fix_imports(module: cst.Module, ctx: MigrationContext) -> cst.Module:
    """Add the imports rules asked for to the ``module`` they changed; drop Haiku imports that nothing uses any
    more. (A module no rule changed is not given here: the imports asked for would go unused.)"""
    # Visited directly: neither visitor needs metadata, and ``transform_module`` would copy the tree.
    if ctx.codemod.scratch.get(AddImportsVisitor.CONTEXT_KEY):
        module = fast_transform(module, AddImports(ctx.codemod), TOKENS)  # (neither has a hook on a token)
    for alias in ctx.analysis.haiku_imports:
        RemoveImportsVisitor.remove_unused_import(ctx.codemod, alias.module, alias.obj, alias.asname)
    return fast_transform(module, RemoveUnusedImports(ctx.codemod), TOKENS)
