"""The codemod engine: migrate one source text.

``migrate_source`` returns text that never mentions haiku (nor a transform another file of the run exports) as it
came, without parsing it. Anything else goes to :mod:`h2f.codemod`, loaded on first use: it parses the text once,
builds the shared :class:`~h2f.analysis.FileAnalysis` (one walk records parents, scopes and bindings:
:mod:`h2f.resolver`), runs every selected rule in a single traversal (:class:`~h2f.context.RuleDispatcher`), fixes
the imports, and refuses output that does not parse. This module itself imports neither libcst nor the rules.
"""

from __future__ import annotations

import dataclasses
import gc
import re
from typing import NamedTuple

from h2f.diagnostics import Diagnostic
from h2f.project import ProjectIndex, mentions_project_transform
from h2f.rule import TARGETS

_HAIKU_WORD = re.compile(r"\bhaiku\b")

#: Larger sources are refused by the file driver and skipped by the project index: parsing and analysing them
#: takes minutes and gigabytes (1 MB is ten times any real model file).
MAX_SOURCE_BYTES = 1_000_000


class MigrationError(Exception):
    """The file could not be migrated at all; it must be left untouched."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic


class UnsupportedTarget(ValueError):
    """The requested target is not one h2f migrates to."""


class MigrationResult(NamedTuple):
    """What migrating one source text produced."""

    source: str
    #: The migrated text; None when it changes the source but was not generated (a verdict was asked for).
    code: str | None
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the migrated code differs from the source."""
        return self.code is None or self.code != self.source


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


def mentions_haiku(source: str) -> bool:
    """Cheap pre-filter: can this text import Haiku at all? (No parse; false positives are fine.)"""
    return _HAIKU_WORD.search(source) is not None


def tune_gc() -> None:
    """Suit the garbage collector to a process that migrates many files: what is alive now (the imported modules)
    is frozen out of its collections, and young objects are collected after 200,000 allocations, not 700 (as mypy
    does). A collection of the young objects goes through every one still alive: amid a file's migration, its
    parsed module and analysis, tens of thousands of them. Between files, only the few hundred a file leaves in
    reference cycles are young, so once the threshold is above what one file keeps alive, the collector runs about
    once in a few hundred files. At 10,000 it still ran every ten files or so and took 5% of a check; a re-run's
    stat front alone crossed it. For a process of h2f's own (the command, a worker), not for a program that imports
    h2f."""
    gc.freeze()
    gc.set_threshold(200_000, 10, 10)


def check_target(target: str) -> None:
    """Raise :class:`UnsupportedTarget` unless ``target`` is one h2f migrates to."""
    if target not in TARGETS:
        raise UnsupportedTarget(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")


def migrate_source(
    source: str, options: Options = Options(), path: str = "<string>", *, texts: bool = True
) -> MigrationResult:
    """Migrate the Python ``source`` read from ``path``; never raises for Haiku-free text.

    Without ``texts``, a verdict: whether the source changes, and the diagnostics, without generating the migrated
    code (its ``code`` is None when it changes). That is what a ``--check`` reports, at about a quarter less cost; the
    check that the migrated code parses (H2F002) needs the code, so it is not made. A rule selection
    (``--select``/``--ignore``) compares codes: it always generates them.
    """
    check_target(options.target)
    if not options.may_need_migration(source):
        return MigrationResult(source, source)
    from h2f.codemod import migrate_module

    if options.select or options.ignore:
        return _migrated_whole(source, options, path)
    return migrate_module(source, options, path, texts=texts)


def _migrated_whole(source: str, options: Options, path: str) -> MigrationResult:
    """What the selected rules make of a file, if it is what all the rules make of it; else what all the rules
    make of it when that is to leave it as it is (with their reasons), or their failure (H2F004...); else H2F008,
    an error: a Haiku program migrated in part does not run (an ``hk.Module`` cannot hold a Flax layer, a Linen
    model cannot be built from a Haiku module class)."""
    from h2f.codemod import migrate_module

    try:
        selected: MigrationResult | None = migrate_module(source, options, path)
    except MigrationError as error:
        if error.diagnostic.code != "H2F003":
            raise  # a refusal under the selection stands (the file is left as it is)
        selected = None  # a rule that needs a rule left out failed: what all the rules do decides
    if selected is not None and not selected.changed:
        return selected
    whole = migrate_module(source, dataclasses.replace(options, select=frozenset(), ignore=frozenset()), path)
    if not whole.changed:
        return whole
    if selected is not None and whole.code == selected.code:
        return selected
    needed = _left_out_rules_needed(source, options, path, selected)
    among = f" (among them: {'; '.join(needed)})" if needed else ""
    message = (
        f"rules left out by --select/--ignore would rewrite this file too{among}, and a file migrated in part "
        "mixes Haiku and Flax code; left as it is (migrate it with all the rules)"
    )
    raise MigrationError(Diagnostic(path, 1, 1, "H2F008", message, "error"))


def _left_out_rules_needed(source: str, options: Options, path: str, selected: MigrationResult | None) -> list[str]:
    """The rules ``options`` leave out that translate a Haiku API ``source`` names and that, put back, change what
    the selection makes of it (``selected``; None: the selection failed), each with those APIs (``layers for
    haiku.Linear``). A rule that rewrites what no API names (a parameter's name, say) is not looked for."""
    import libcst as cst

    from h2f.analysis import FileAnalysis
    from h2f.codemod import migrate_module
    from h2f.rule import select_rules
    from h2f.traversal import walk

    module = cst.parse_module(source)
    analysis = FileAnalysis.build(cst.MetadataWrapper(module, unsafe_skip_copy=True), options.project, path)
    used = {name for node in walk(module) if (name := analysis.haiku_name(node)) is not None}
    chosen = set(select_rules(options.target, options.select, options.ignore))
    needed = []
    for rule in select_rules(options.target):
        apis = sorted(used.intersection(rule.haiku_apis))
        if rule in chosen or not apis:
            continue
        exactly = dataclasses.replace(
            options, select=frozenset({*(kept.name() for kept in chosen), rule.name()}), ignore=frozenset()
        )
        try:
            changes = selected is None or migrate_module(source, exactly, path).code != selected.code
        except MigrationError:
            changes = True  # it fails without some other rule left out: it has work here all the same
        if changes:
            needed.append(f"{rule.name()} for {', '.join(apis)}")
    return needed
