"""What the files of one run export to each other: module-level transforms, functions that return one, and
Haiku initializers bound to module-level names.

``train.py`` often imports the model that ``models.py`` transforms (``from models import model``) and calls
its ``init``/``apply``. Migrating file by file would rewrite ``models.py`` and leave ``train.py`` calling the
Linen model with Haiku's signature. The project index, built once per run from the files being migrated,
lets the engine rewrite those call sites too, even in files that never import haiku.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from h2f.analysis import FileAnalysis
    from h2f.cache import Cache, StatFront
    from h2f.engine import Options

_HAIKU_BYTES = b"haiku"
_WORD = re.compile(r"\w+")
_WORD_BYTES = re.compile(rb"\w+")
#: What follows ``from``/``import`` on its line, through backslash continuations and parentheses.
_IMPORT_TAIL = rb"\b[^\n(\\]*(?:(?:\\\r?\n|\\|\((?:[^)#]|#[^\n]*)*\)?)[^\n(\\]*)*"
#: ``from ...`` and ``import ...``, searched for apart: a pattern that starts with a literal is searched for much
#: faster than one that starts with an alternation (2.5x over the standard library), and each ``import`` a ``from``
#: statement holds only matches again what that statement's match already holds.
_IMPORTS = (re.compile(rb"from" + _IMPORT_TAIL), re.compile(rb"import" + _IMPORT_TAIL))


class ExportedTransform(NamedTuple):
    """A module-level name bound to ``hk.transform`` and friends, as other files see it."""

    name: str
    kind: str
    with_state: bool
    apply_rng: bool
    methods: tuple[str, ...] = ()
    #: rng streams and mutable collections of the defining file (its apply call sites need them).
    rng_streams: frozenset[str] = frozenset()
    collections: frozenset[str] = frozenset()
    #: A module-level function returning the transform (``def make_model(): return hk.transform(...)``), not the
    #: transform itself: what a call of it returns is the transform.
    factory: bool = False
    #: A module class's: where its constructor takes ``name`` among its positional parameters (``self`` not
    #: counted), so that ``Block(8, "block_a")`` in the importing file passes it by keyword, as Linen requires.
    name_position: int | None = None
    #: The module that defines it, by the dotted name the run gives its file (``pkg.blocks``), also where another
    #: module re-exports it; set when the index claims it (empty for a file at the top of the run's root).
    module: str = ""

    @property
    def is_transform(self) -> bool:
        """Whether it is a transform (or a factory of one), not an initializer or a module class."""
        return self.kind not in (INITIALIZER_EXPORT, *CLASS_EXPORTS)

    @property
    def migrated(self) -> bool:
        """Whether the migration of its file makes it Flax (a class kept Haiku stays as it is)."""
        return self.kind not in (KEPT_CLASS_EXPORT, SKIPPED_CLASS_EXPORT)


#: The ``kind`` of an export that is no transform but a Haiku initializer the migration translates where it is
#: bound (``W_INIT = hk.initializers.VarianceScaling(2.0)``): a Flax initializer once migrated.
INITIALIZER_EXPORT = "initializer"
#: The ``kind`` of an export that is a module-level ``hk.Module`` subclass some other file of the run imports by
#: name: the NNX target, which does not follow a module class across files, leaves its file as it is.
MODULE_CLASS_EXPORT = "module_class"
#: The ``kind`` of a module-level Haiku module class its file keeps Haiku, as a subclass of a Haiku layer (H2F011)
#: or of such a class: code that becomes Flax cannot build it.
KEPT_CLASS_EXPORT = "kept_class"
#: The ``kind`` of a module-level Haiku module class its file keeps Haiku under ``# h2f: skip``: a file whose
#: migration turns code that builds it into Flax is left untouched (H2F004), as the defining file would be.
SKIPPED_CLASS_EXPORT = "skipped_class"
#: The kinds of the module class exports, exported only when some file of the run imports them by name.
CLASS_EXPORTS = (MODULE_CLASS_EXPORT, KEPT_CLASS_EXPORT, SKIPPED_CLASS_EXPORT)

#: ``"pkg.models.model"`` (and every shorter dotted suffix, ``"models.model"``) → the exported transform.
ProjectIndex = Mapping[str, ExportedTransform]


def _resolved(directory: Path | str) -> Path:
    """``directory`` resolved (remembered by its absolute path, a string: a relative one means another directory
    after a change of working directory, and ``Path.absolute`` would build a path again at each of many calls)."""
    return _resolved_absolute(os.path.join(os.getcwd(), directory))


@functools.lru_cache(maxsize=256)
def _resolved_absolute(directory: str) -> Path:
    return Path(directory).resolve()


def module_suffixes(path: Path, root: Path) -> list[str]:
    """The dotted module names ``path`` may be imported as, longest first (``pkg.models``, ``models``)."""
    parts = module_name_parts(path, root)
    return [".".join(parts[index:]) for index in range(len(parts))]


def module_name_parts(path: Path, root: Path) -> tuple[str, ...]:
    """The parts of the longest dotted module name ``path`` may be imported as (``("pkg", "models")``): its real
    path's under ``root`` (only its name's stem when it is not under ``root``)."""
    real = path.resolve() if os.path.islink(path) else path
    directory = _package_parts(real.parent if real is not path else _resolved(os.path.dirname(path)), _resolved(root))
    stem = (real.name.rpartition(".")[0] or real.name) if directory is not None else path.stem
    parts = (*(directory or ()), stem)
    return parts[:-1] if stem == "__init__" else parts


@functools.lru_cache(maxsize=1024)
def _package_parts(directory: Path, root: Path) -> tuple[str, ...] | None:
    """The parts of the resolved ``directory`` under the resolved ``root`` (None: not under it)."""
    try:
        return directory.relative_to(root).parts
    except ValueError:
        return None


#: The start of an index key naming the exporting module by its file (what a relative import resolves to).
_FILE_KEY = "file:"


def module_path(path: Path) -> Path:
    """The real path of the module ``path`` defines, without ``.py`` (a package's directory for ``__init__.py``)."""
    real = _real_path(path)
    return real.parent if real.name == "__init__.py" else real.with_suffix("")


def _real_path(path: Path) -> Path:
    """``path`` resolved, resolving the (few, shared) directories once each rather than every file's whole path."""
    return path.resolve() if os.path.islink(path) else _resolved(path.parent) / path.name


def is_file_key(key: str) -> bool:
    """Whether the index key ``key`` names its module by file (:func:`file_key`), not by dotted name."""
    return key.startswith(_FILE_KEY)


def file_key(module: Path | str, name: str) -> str:
    """The index key of ``name`` exported by the module at ``module`` (:func:`module_path`; a string: its POSIX
    form)."""
    return f"{_FILE_KEY}{module if isinstance(module, str) else module.as_posix()}:{name}"


def import_keys(importer: str | None, module: str, name: str) -> list[str]:
    """Where ``from <module> import <name>``, written in the file ``importer``, may find ``name`` in the project
    index, likeliest first: the module file under the importing file's directory or one of its ancestors, nearest
    first (where Python's path would find it, for a script or a package run from its root), as far as the first
    that exists (Python imports that one, even if it is no file of the run); when none does, the dotted name, if
    one file of the run claims it."""
    if importer is None:
        return [f"{module}.{name}"]
    return _keys_at(_module_places(importer, module), module, name)


def _module_places(importer: str, module: str) -> tuple[tuple[str, ...], bool]:
    """Where ``import <module>`` in the file ``importer`` may find the module (:func:`import_keys`): its paths
    (POSIX, without ``.py``) under the importer's directory and each ancestor, nearest first, as far as the first
    that exists; and whether one does."""
    return _module_places_from(_importing_directory(Path(importer)), module)


def _importing_directory(importer: Path) -> str:
    """The directory where the search for what the file ``importer`` imports starts (its package's, for a package's
    ``__init__.py``)."""
    return os.fspath(module_path(importer).parent)


def _module_places_from(directory: str, module: str) -> tuple[tuple[str, ...], bool]:
    """:func:`_module_places` of an importer in ``directory``."""
    parts = module.split(".")
    places = []
    while True:
        place = os.path.join(directory, *parts)
        places.append(place.replace(os.sep, "/"))
        if _is_module(place):
            return tuple(places), True  # Python imports this one: another file of the run that claims it is not it
        directory, child = os.path.dirname(directory), directory
        if directory == child:
            return tuple(places), False


def _keys_at(places: tuple[tuple[str, ...], bool], module: str, name: str) -> list[str]:
    """:func:`import_keys` of ``name`` in the module found at the ``places`` (:func:`_module_places`)."""
    paths, found = places
    keys = [file_key(path, name) for path in paths]
    return keys if found else [*keys, f"{module}.{name}"]


#: :func:`_module_places` of one importing file as a function of the module, each module looked for once (a file
#: reads ``jnp.<name>`` hundreds of times).
ModulePlaces = Callable[[str], tuple[tuple[str, ...], bool]]


def _places_of(path: Path, known: dict[str, ModulePlaces] | None = None) -> ModulePlaces:
    """:func:`_module_places` of the imports of the file ``path`` (and, with ``known``, of every file in its
    directory: their importing directory's, :func:`_importing_directory`)."""
    directory = _importing_directory(path)
    places = known.get(directory) if known is not None else None
    if places is None:
        places = functools.cache(functools.partial(_module_places_from, directory))
        if known is not None:
            known[directory] = places
    return places


def defines(key: str) -> bool:
    """Whether the index key ``key`` names a module file that exists and binds the name at its module level (for
    a dotted key, which names no file: False)."""
    path = _module_file(key)
    if path is None:
        return False
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return False
    return exported_name(key) in set(_module_level_bindings(tree.body))


def _is_module(path: str | Path) -> bool:
    """Whether a module file is at ``path`` (without ``.py``): ``path.py``, or a package ``path/__init__.py``."""
    return _module_source(path) is not None


def _module_source(path: str | Path) -> Path | None:
    """The file of the module at ``path`` (without ``.py``): ``path.py``, or a package's ``path/__init__.py``."""
    return next(
        (Path(file) for file in (f"{path}.py", os.path.join(path, "__init__.py")) if os.path.isfile(file)), None
    )


def star_prefixes(keys: Iterable[str]) -> tuple[str, ...]:
    """How the index keys of what ``from <module> import *`` brings in start, from the ``keys`` of its ``*``
    (:func:`import_keys`, :func:`relative_import_key`): those that name the module by file."""
    return tuple(key.removesuffix("*") for key in keys if is_file_key(key))


def relative_import_key(importer: str, dots: int, module: str, name: str) -> str:
    """Where ``from .<module> import <name>`` (``dots`` dots), written in the file ``importer``, finds ``name``:
    the module file ``<package>/<module>.py`` of the importer's package, the directory it is in (each dot after
    the first goes one package up)."""
    package = _real_path(Path(importer)).parent
    for _ in range(dots - 1):
        package = package.parent
    return file_key(package.joinpath(*module.split(".")), name)


class SourceFacts(NamedTuple):
    """What the project index needs of a file without parsing it: does it mention haiku, which words its imports
    name (:func:`imported_words`), is it marked ``# h2f: skip-file``."""

    haiku: bool
    imports: frozenset[str]
    skip_file: bool = False

    @classmethod
    def of(cls, raw: bytes) -> SourceFacts:
        """The facts of the source bytes ``raw``."""
        from h2f.marks import skips_file  # (a run that reads no file, all known to its stat front, does not load it)

        imports = frozenset(word.decode("ascii") for word in imported_words([raw]))
        return cls(_HAIKU_BYTES in raw, imports, skips_file(raw))


def index_transforms(
    files: Iterable[Path | str],
    root: Path,
    cache: Cache | None = None,
    front: StatFront | None = None,
    on_read_haiku: Callable[[], None] | None = None,
    options: Options | None = None,
) -> ProjectIndex:
    """Read the files that mention haiku and collect their module-level transforms (through ``cache``).

    What a file exports is read from its code, as all the rules migrate it. Under a rule selection (``options``)
    or with ``# h2f:`` marks, the file may be left as it is after all (H2F008, H2F004): its transforms and
    initializers count only if migrating it with ``options`` changes it, else its importers would be rewritten
    for a Flax model that is not; its module classes are then Haiku classes still (:data:`KEPT_CLASS_EXPORT`).

    Re-exports are followed (:func:`_add_re_exports`) through the files of the run and through the
    ``__init__.py`` of the packages they are in, which the run need not hold.
    A dotted name claimed by two different files is dropped: h2f does not guess which one an import means.
    Files that cannot be read or parsed are skipped here; migrating them reports the problem. With a ``front``,
    a file whose stat signature it knows is not read unless its exports are needed. ``on_read_haiku`` is called
    for each file mentioning haiku whose bytes had to be read (see :func:`h2f.files.start_workers_early`).
    """
    # (by name: most files of a run have no Haiku, and a run need not make a Path of each of them)
    facts_by_name: dict[str, tuple[SourceFacts, bytes | None]] = {}
    for name in map(os.fspath, files):
        try:
            fact, raw = facts_by_name[name] = _read_facts(name, front)
        except OSError:
            continue
        if on_read_haiku is not None and fact.haiku and raw is not None:
            on_read_haiku()
    imported: set[str] = set().union(*{fact.imports for fact, _ in facts_by_name.values()})  # (words are shared)
    found: dict[str, tuple[Path, ExportedTransform] | None] = {}
    for name, (fact, raw) in facts_by_name.items():
        if not fact.haiku:
            continue
        path = Path(name)
        if imported.isdisjoint(module_name_parts(path, root)):
            continue  # no file of the run imports a module of that name: nothing to export
        if raw is None:
            try:
                raw = path.read_bytes()
            except OSError:
                continue
        exports = cache.exports(raw, file_exports) if cache is not None else file_exports(raw)
        if exports and options is not None and not _migrates(raw, path, options):
            exports = [_kept_haiku(exported) for exported in exports if exported.kind in CLASS_EXPORTS]
        for exported in exports:
            if exported.kind != MODULE_CLASS_EXPORT or exported.name in imported:  # (kept: ``blocks.Block``)
                _claim(found, path, root, exported)
    if not found:
        return {}
    facts: dict[Path, SourceFacts] = {}
    contents: dict[Path, bytes | None] = {}
    for name, (fact, raw) in facts_by_name.items():
        path = Path(name)
        facts[path], contents[path] = fact, raw
    for path in _packages_outside(facts, root):
        try:
            facts[path], contents[path] = _read_facts(path, front)
        except OSError:
            continue
    _refused_among_the_run(found, facts, contents, root, options)
    _add_re_exports(found, facts, contents, root)
    return {key: value[1] for key, value in found.items() if value is not None}


def _packages_outside(run: Iterable[Path], root: Path) -> list[Path]:
    """The ``__init__.py`` of each package (under ``root``) that a file of the ``run`` is in, where the run does not
    hold it: what a package re-exports (``from .blocks import Block``) its importers reach through it (``from pkg
    import Block``) whether or not the run holds its ``__init__.py``."""
    run = list(run)
    inside = {_real_path(path) for path in run}
    top = _resolved(root)
    seen: set[Path] = set()
    found = []
    for path in run:
        directory = _real_path(path).parent
        while directory not in seen and directory.is_relative_to(top):
            seen.add(directory)
            package = directory / "__init__.py"
            if not package.is_file():
                break
            if package not in inside:
                found.append(package)
            directory = directory.parent
    return found


def _kept_haiku(exported: ExportedTransform) -> ExportedTransform:
    """The module class ``exported`` as a file left as it is exports it: a Haiku class still."""
    return exported if not exported.migrated else exported._replace(kind=KEPT_CLASS_EXPORT)


def _migrates(raw: bytes, path: Path, options: Options, project: ProjectIndex | None = None) -> bool:
    """Whether ``options`` migrate the file (``raw``, at ``path``) rather than leave it as it is, when a rule
    selection or ``# h2f:`` marks may leave it so (otherwise its exports say it is migrated); with the run's
    ``project`` index, whether it does so among the files of the run (a skip it cannot honour for what another
    file exports)."""
    if project is None and not (options.select or options.ignore or b"h2f:" in raw):
        return True
    from h2f.engine import MigrationError, migrate_source
    from h2f.files import DecodeError, decode

    try:
        text = decode(raw, str(path)).text
        return migrate_source(text, dataclasses.replace(options, project=project or {}), str(path)).changed
    except (MigrationError, DecodeError):
        return False


def _refused_among_the_run(
    found: dict[str, tuple[Path, ExportedTransform] | None],
    facts: Mapping[Path, SourceFacts],
    contents: Mapping[Path, bytes | None],
    root: Path,
    options: Options | None,
) -> None:
    """Module classes of a file the run leaves as it is because of what another file exports stay Haiku: one
    that builds a skipped class of another file (imported by name, by a star, through a re-export, or read
    through its module), or skips a statement that reads what another file migrates, is refused (H2F004), so the
    classes it exports are kept Haiku too (one step, not chains of such files)."""
    from h2f.engine import Options

    reached = dict(found)
    _add_re_exports(reached, facts, contents, root)  # (what the exporters import, also through ``pkg/__init__.py``)
    index = {key: value[1] for key, value in reached.items() if value is not None}
    skipping = [value for value in reached.values() if value is not None and value[1].kind == SKIPPED_CLASS_EXPORT]
    #: What an import of a skipped class writes: its name, or its module's (``from blocks import *``, ``blocks.X``).
    skipped = {exported.name for _, exported in skipping} | {module_path(path).name for path, _ in skipping}
    migrated = {exported_name(key) for key, exported in index.items() if exported.migrated}
    exporters = {value[0] for value in found.values() if value is not None and value[1].kind == MODULE_CLASS_EXPORT}
    for path in exporters:
        imports = facts[path].imports if path in facts else frozenset()
        if not imports & (skipped | migrated):
            continue
        try:
            raw = contents.get(path) or path.read_bytes()
        except OSError:
            continue
        if not (imports & skipped or (b"h2f:" in raw and imports & migrated)):
            continue
        if not _migrates(raw, path, options or Options(), index):
            for key, value in list(found.items()):
                if value is not None and value[0] == path and value[1].kind in CLASS_EXPORTS:
                    found[key] = (path, _kept_haiku(value[1]))
                elif value is not None and value[0] == path:
                    del found[key]  # (its importers keep Haiku's call sites)


def _claim(
    found: dict[str, tuple[Path, ExportedTransform] | None], path: Path, root: Path, exported: ExportedTransform
) -> bool:
    """Index ``exported`` under every key naming it in the module ``path``; a key another file claims too is
    dropped. Whether a key was new."""
    dotted_names = module_suffixes(path, root)
    if not exported.module and dotted_names:
        exported = exported._replace(module=dotted_names[0])
    keys = [f"{dotted}.{exported.name}" for dotted in dotted_names]
    new = False
    for key in [*keys, file_key(module_path(path), exported.name)]:
        claimed = found.get(key, (path, exported))
        new |= key not in found
        found[key] = (path, exported) if claimed is not None and claimed[0] == path else None
    return new


#: Re-exports followed through at most this many modules (``pkg/__init__.py`` of ``pkg/models/__init__.py`` …).
_RE_EXPORT_DEPTH = 4


def _add_re_exports(
    found: dict[str, tuple[Path, ExportedTransform] | None],
    facts: Mapping[Path, SourceFacts],
    contents: Mapping[Path, bytes | None],
    root: Path,
) -> None:
    """``from .models import model`` at the top level of ``pkg/__init__.py``: ``pkg`` exports ``model`` too, so
    ``from pkg import model`` elsewhere finds the transform. Only files whose imports name an exported transform
    are read (with :mod:`ast`: their module-level ``from … import`` statements)."""
    for _ in range(_RE_EXPORT_DEPTH):
        names = {exported_name(key) for key, value in found.items() if value is not None}
        if not names:
            return
        added = False
        for path, fact in facts.items():
            if names.isdisjoint(fact.imports):
                continue
            for name, keys, _ in _module_level_imports(path, contents.get(path)):
                exported = next((value[1] for key in keys if (value := found.get(key)) is not None), None)
                if exported is not None:
                    added |= _claim(found, path, root, exported._replace(name=name))
        if not added:
            return


def _parsed(path: Path, raw: bytes | None) -> ast.Module | None:
    """The :mod:`ast` of the file ``path`` (its bytes ``raw`` when given); None when it cannot be read or parsed."""
    try:
        return ast.parse(raw if raw is not None else path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None


def _module_level_imports(path: Path, raw: bytes | None) -> Iterator[tuple[str, list[str], ast.alias]]:
    """For each name a module-level ``from … import`` of the file ``path`` binds, and nothing else at module level
    rebinds: the name, the index keys where what it imports may be (:func:`import_keys`,
    :func:`relative_import_key`), and the import's alias (where it is)."""
    tree = _parsed(path, raw)
    if tree is not None:
        yield from _from_imports(path, tree)


def _from_imports(path: Path, tree: ast.Module) -> Iterator[tuple[str, list[str], ast.alias]]:
    """:func:`_module_level_imports` of the parsed file ``tree``."""
    places = _places_of(path)
    for name, level, module, alias in _from_import_specs(tree):
        yield name, _from_import_keys(places, path, level, module, alias.name), alias


def _from_import_specs(tree: ast.Module) -> Iterator[tuple[str, int, str, ast.alias]]:
    """For each name a module-level ``from … import`` of the parsed file ``tree`` binds, and nothing else at module
    level rebinds: the name, the import's level (leading dots) and module, and its alias."""
    bindings = collections.Counter(_module_level_bindings(tree.body))
    for statement in tree.body:
        if not isinstance(statement, ast.ImportFrom) or statement.module is None:
            continue
        for alias in statement.names:
            name = alias.asname or alias.name
            if alias.name != "*" and bindings[name] == 1:
                yield name, statement.level, statement.module, alias


def _reads_through_modules(path: Path, tree: ast.Module) -> Iterator[tuple[str, list[str], ast.alias | ast.Attribute]]:
    """What the parsed file ``tree`` (at ``path``) reads of other modules besides the names its module-level
    ``from … import`` statements bind (:func:`_module_read_specs`): the name, the index keys where it may be, and
    where in the file it is read."""
    places = _places_of(path)
    for name, level, module, node in _module_read_specs(tree):
        yield name, _from_import_keys(places, path, level, module, name), node


def _module_read_specs(tree: ast.Module) -> Iterator[tuple[str, int, str, ast.alias | ast.Attribute]]:
    """What the parsed file ``tree`` reads of other modules besides the names its module-level ``from … import``
    statements bind: ``from models import *`` (the name ``*``), and ``models.model`` after a module-level ``import
    models`` (``import pkg.models as m``, then ``m.model``; ``from pkg import models``, ``from . import models``),
    where no function parameter or local variable hides the module: the name, the level (leading dots) and the
    module of the import it is read through, and where in the file it is read."""
    bindings = collections.Counter(_module_level_bindings(tree.body))
    #: How the file names a module it imports (``m``, ``pkg.models``) → the level and module of the import.
    modules: dict[str, tuple[int, str]] = {}
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom):
            for alias in statement.names:
                if alias.name == "*" and statement.module is not None:
                    yield "*", statement.level, statement.module, alias
                elif alias.name != "*" and bindings[alias.asname or alias.name] == 1:  # (perhaps a module)
                    module = f"{statement.module}.{alias.name}" if statement.module else alias.name
                    modules[alias.asname or alias.name] = statement.level, module
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                if bindings[alias.asname or alias.name.split(".")[0]] == 1:
                    modules[alias.asname or alias.name] = 0, alias.name
    if modules:
        for node, (level, module) in _module_attribute_reads(tree, modules, frozenset()):
            yield node.attr, level, module, node


def _module_attribute_reads(
    node: ast.AST, modules: Mapping[str, tuple[int, str]], hidden: frozenset[str]
) -> Iterator[tuple[ast.Attribute, tuple[int, str]]]:
    """The reads ``module.name`` under ``node`` of the ``modules`` a file imports (each with what ``modules`` says of
    its import), except where a function's parameter or local variable hides a module's first name (``hidden``)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = node.args
        parameters = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
        stored = [
            child.id for child in ast.walk(node) if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store)
        ]
        hidden = hidden | {parameter.arg for parameter in parameters if parameter is not None} | set(stored)
    if isinstance(node, ast.Attribute):
        dotted = _ast_dotted(node.value)
        imported = modules.get(dotted) if dotted is not None and dotted.split(".")[0] not in hidden else None
        if imported is not None:
            yield node, imported
            return
    for child in ast.iter_child_nodes(node):
        yield from _module_attribute_reads(child, modules, hidden)


#: What a file reads of another module (:func:`module_reads`): the name as that module names it (``*`` for a star
#: import), the level (leading dots) and module of the import, and where it is (1-based line, 0-based column).
ModuleRead = tuple[str, int, str, int, int]


def module_reads(raw: bytes) -> list[ModuleRead]:
    """What the source ``raw`` reads of other modules, in order: the names its module-level ``from … import``
    statements bind (:func:`_from_import_specs`), then its star imports and reads through imported modules
    (:func:`_module_read_specs`). Nothing of it depends on where the file is: it is cached by content
    (:meth:`h2f.cache.Cache.module_reads`). Empty when ``raw`` does not parse."""
    try:
        tree = ast.parse(raw)
    except (SyntaxError, ValueError):
        return []
    names = [(alias.name, level, module, alias) for _, level, module, alias in _from_import_specs(tree)]
    found = [*names, *_module_read_specs(tree)]
    return [(name, level, module, node.lineno, node.col_offset) for name, level, module, node in found]


def _from_import_keys(places: ModulePlaces, path: Path, level: int, module: str, name: str) -> list[str]:
    """Where ``name``, imported ``from`` the ``module`` (``level`` dots before it) by the file ``path`` (whose
    ``places`` find modules), may be in the index."""
    if level:
        return [relative_import_key(str(path), level, module, name)]
    return _keys_at(places(module), module, name)


def _ast_dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for an :mod:`ast` Name/Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _ast_dotted(node.value)
        return f"{base}.{node.attr}" if base is not None else None
    return None


class OutsideImport(NamedTuple):
    """A module-level ``from … import`` across the edge of the run: by a file outside it, of what a file of the run
    exports (:func:`importers_outside`), or by a file the run migrates, of a Haiku class or initializer a file
    outside it defines (:func:`imports_from_outside`)."""

    path: Path
    line: int
    col: int  # 1-based
    name: str  # as the exporter names it
    exporter: Path
    #: Whether ``exporter`` only re-exports what the run migrates (``pkg/__init__.py``), outside the run itself.
    re_exported: bool = False
    #: In a notebook: the code cell (its index among all cells) that ``line`` counts in.
    cell: int | None = None


def importers_outside(
    run: Iterable[Path],
    outside: Iterable[Path],
    root: Path,
    cache: Cache | None = None,
    front: StatFront | None = None,
    also_in_run: Iterable[Path] = (),
) -> list[OutsideImport]:
    """The imports, in files of the project (under ``root``) that are ``outside`` the run, of what the files the
    ``run`` migrates export (transforms, factories of them, initializers, module classes): migrating them leaves
    those files calling a Flax model, initializer or module as Haiku's. Re-exports by any file (outside, migrated,
    or ``also_in_run``) are followed (``from pkg import model`` through ``pkg/__init__.py``, which is reported
    too when it is outside the run).
    Module-level imports are seen: ``from … import``, ``from models import *``, and ``import models`` read as
    ``models.model`` (not notebooks)."""
    run = list(run)
    facts: dict[Path, tuple[SourceFacts, bytes | None]] = {}
    for path in outside:
        try:
            facts[path] = _read_facts(path, front)
        except OSError:
            continue
    imported: set[str] = set().union(*{fact.imports for fact, _ in facts.values()})
    found: dict[str, tuple[Path, ExportedTransform] | None] = {}
    for path in run:
        if path.suffix != ".py" or imported.isdisjoint(module_name_parts(path, root)):
            continue
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        if _HAIKU_BYTES in raw:
            for exported in cache.exports(raw, file_exports) if cache is not None else file_exports(raw):
                if exported.migrated:
                    _claim(found, path, root, exported)
    if found:  # re-exports, by files outside the run or in it (``pkg/__init__.py``)
        every = dict(facts)
        for path in [*run, *also_in_run]:
            try:
                every.setdefault(path, _read_facts(path, front))
            except OSError:
                continue
        contents = {path: raw for path, (_, raw) in every.items()}
        _add_re_exports(found, {path: fact for path, (fact, _) in every.items()}, contents, root)
    exports = {key: value for key, value in found.items() if value is not None}
    names = {exported_name(key) for key in exports}
    modules = {part for path, _ in exports.values() for part in module_name_parts(path, root)}
    imports = []
    for path, (fact, raw) in facts.items():
        tree = None if names.isdisjoint(fact.imports) and modules.isdisjoint(fact.imports) else _parsed(path, raw)
        if tree is None:
            continue
        reads = sorted(_reads_through_modules(path, tree), key=lambda read: (read[2].lineno, read[2].col_offset))
        for name, keys, node in [*_from_imports(path, tree), *reads]:
            if name == "*":  # any name the module exports
                prefixes = star_prefixes(keys)
                hit = next((value for key, value in exports.items() if key.startswith(prefixes)), None)
            else:
                hit = next((value for key in keys if (value := exports.get(key)) is not None), None)
            if hit is not None:
                name = _imported_name(node)
                imports.append(OutsideImport(path, node.lineno, node.col_offset + 1, name, hit[0], hit[0] not in run))
    return imports


def imports_from_outside(
    changed: Iterable[Path | str],
    run: Iterable[Path | str],
    root: Path,
    cache: Cache | None = None,
    front: StatFront | None = None,
) -> list[OutsideImport]:
    """The module-level imports, in the files the run migrated (``changed``), of a Haiku module class or
    initializer that a file of the project (under ``root``) outside the ``run`` defines and the run therefore
    leaves Haiku: the migrated importer builds it from Flax code, or passes it to a Flax layer, as Flax's (the
    mirror of :func:`importers_outside`; ``from blocks import Block``, ``from blocks import *``, ``import
    blocks`` read as ``blocks.Block``), in a ``.py`` file or the code cells of a notebook (at the cell and the
    line in it). Only imports naming the defining module itself are seen (not re-exports),
    and only those the file may build or pass on (:meth:`~h2f.analysis.FileAnalysis.builders_of_import`: not one
    it never reads, nor one it only names in annotations and ``isinstance`` tests)."""
    from h2f.files import is_notebook

    run = list(run)
    inside: set[str] | None = None  # (the real paths of the run's files, when first needed)
    top = _resolved(root)
    found = []
    listings: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    places_by_directory: dict[str, ModulePlaces] = {}

    @functools.cache
    def haiku_outside(exporter: Path) -> list[ExportedTransform]:
        """What ``exporter`` exports, if it is a file of the project outside the run that mentions haiku."""
        nonlocal inside
        if not exporter.is_relative_to(top):
            return []
        inside = {os.path.realpath(file) for file in run} if inside is None else inside
        if os.path.realpath(exporter) in inside:
            return []
        try:
            source = exporter.read_bytes()
        except OSError:
            return []
        if _HAIKU_BYTES not in source:
            return []
        return cache.exports(source, file_exports) if cache is not None else file_exports(source)

    for file in map(os.fspath, changed):
        facts = front.known(file) if front is not None and file.endswith(".py") else None
        try:
            raw = Path(file).read_bytes() if facts is None else None
        except OSError:
            continue
        program = _notebook_program(file, raw) if raw is not None and is_notebook(file) else None
        if program is not None:
            raw = program[0].encode()
        words = facts.imports if facts is not None else SourceFacts.of(raw or b"").imports
        if not _may_import_a_module_under(os.path.dirname(file), top, words, listings):
            continue  # (most files import only installed packages: no parse)
        path = Path(file)
        try:
            raw = raw if raw is not None else path.read_bytes()
        except OSError:
            continue
        analysis = functools.cache(functools.partial(_analysis_of, raw))  # (parsed with libcst once needed)
        places = _places_of(path, places_by_directory)
        for name, level, module, line, col in cache.module_reads(raw) if cache is not None else module_reads(raw):
            exporter = _module_file(_from_import_keys(places, path, level, module, name)[-1])
            haiku = [
                exported.name
                for exported in (haiku_outside(exporter) if exporter is not None else [])
                if name in ("*", exported.name) and exported.kind in (*CLASS_EXPORTS, INITIALIZER_EXPORT)
            ]
            if not haiku:
                continue
            analysed = analysis()
            builders = analysed.builders_of_import(name, line, col + 1, haiku) if analysed else None
            where = (None, line)
            if program is not None:
                from h2f.notebooks import locate  # (where a notebook is met: a run of .py files does not load it)

                where = locate(program[1], line)
            if builders != [] and where is not None:  # (used as Flax's, or h2f cannot tell)
                found.append(OutsideImport(path, where[1], col + 1, name, exporter, cell=where[0]))
    return found


def _notebook_program(path: str, raw: bytes) -> tuple[str, list[tuple[int, int] | None]] | None:
    """The code cells of the notebook ``raw`` (at ``path``) as one module, and where its lines are
    (:func:`h2f.notebooks.notebook_program`); None when it cannot be read as one."""
    from h2f.files import DecodeError, decode
    from h2f.notebooks import notebook_program

    try:
        return notebook_program(decode(raw, path).text, path)
    except DecodeError:
        return None


def _imported_name(node: ast.alias | ast.Attribute) -> str:
    """The name an import (``from m import name``, ``*``) or a read through a module (``m.name``) takes of it."""
    return node.name if isinstance(node, ast.alias) else node.attr


def _may_import_a_module_under(
    directory: Path | str, top: Path, words: frozenset[str], listings: dict[str, tuple[frozenset[str], frozenset[str]]]
) -> bool:
    """Whether one of ``words`` (those of a file's import statements) names a module file or package in
    ``directory`` or one of its ancestors up to ``top`` (``listings`` remembers the directories listed: the stems
    of their ``.py`` files, and all their names)."""
    folder, stop = str(_resolved(directory)), str(top)
    while folder == stop or folder.startswith(stop + os.sep):
        listing = listings.get(folder)
        if listing is None:
            try:
                names = frozenset(os.listdir(folder))
            except OSError:
                names = frozenset()
            listing = listings[folder] = frozenset(name[:-3] for name in names if name.endswith(".py")), names
        stems, names = listing
        if not words.isdisjoint(stems) or any(_is_module(os.path.join(folder, word)) for word in words & names):
            return True
        folder, parent = os.path.dirname(folder), folder
        if folder == parent:
            break
    return False


def _module_file(key: str) -> Path | None:
    """The file of the module the index key ``key`` names by file (``models.py``, ``pkg/__init__.py``), if there
    is one."""
    return _module_source(key.removeprefix(_FILE_KEY).rpartition(":")[0]) if is_file_key(key) else None


def _module_level_bindings(body: list[ast.stmt]) -> Iterator[str]:
    """Every name the statements ``body`` bind at module level (one item per binding), through ``if``/``try``/
    loops/``with`` but not into functions and classes."""
    for statement in body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield statement.name
            continue
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            yield from ((alias.asname or alias.name).split(".")[0] for alias in statement.names)
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                yield node.id
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield node.name
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                yield from ((alias.asname or alias.name).split(".")[0] for alias in node.names)


def files_skipped_whole(files: Iterable[Path], front: StatFront | None = None) -> list[Path]:
    """The files among ``files`` marked ``# h2f: skip-file`` (as the facts ``front`` knows say, else read): the run
    leaves them as they are, so to the files it migrates they are as good as outside it."""
    found = []
    for path in files:
        try:
            facts = _read_facts(path, front)[0]
        except OSError:
            continue
        if facts.skip_file:
            found.append(path)
    return found


def _read_facts(path: Path | str, front: StatFront | None = None) -> tuple[SourceFacts, bytes | None]:
    """The facts of ``path`` and its bytes, through ``front`` when there is one (no bytes: its facts were known)."""
    if front is not None:
        return front.read(path)
    raw = Path(path).read_bytes()
    return SourceFacts.of(raw), raw


def imported_words(sources: Iterable[bytes]) -> set[bytes]:
    """Every word that follows a ``from`` or an ``import`` keyword in ``sources`` (up to the end of the line, a
    backslash continuation or closing parenthesis included): whatever module one of them imports is named
    there. Prose and strings add words too, which only costs a file's exports being read for nothing."""
    words: set[bytes] = set()
    for raw in sources:
        for pattern in _IMPORTS:
            for statement in pattern.findall(raw):
                words.update(_WORD_BYTES.findall(statement))
    return words


def file_exports(raw: bytes) -> list[ExportedTransform]:
    """The module-level transforms of the Python source ``raw`` (none when it does not parse)."""
    import libcst as cst

    from h2f.marks import Marks, find_marks
    from h2f.rules.transform import left_in_place
    from h2f.skip import hides_transform, skipped

    analysis = _analysis_of(raw)
    if analysis is None:
        return []
    module = analysis.module
    marks = find_marks(raw.decode(module.encoding, errors="replace")) if b"h2f:" in raw else Marks()
    top = set(map(id, module.body))
    kept = {  # what a skip leaves Haiku: a module-level initializer binding, a class; or the whole file
        id(statement) for statement in module.body if marks.skip_file or (marks.lines and skipped(statement))
    }
    classes = [(name, info) for name, info in analysis.module_classes.items() if id(info.node) in top]
    left = _classes_left_in_place(raw) if any(id(info.node) not in kept for _, info in classes) else set()
    exports = [
        ExportedTransform(
            name,
            SKIPPED_CLASS_EXPORT
            if id(info.node) in kept
            else KEPT_CLASS_EXPORT
            if left is None or name in left
            else MODULE_CLASS_EXPORT,
            False,
            False,
            name_position=info.name_position(),
        )
        for name, info in classes
    ]
    if marks.skip_file:
        return exports  # the file stays Haiku, so the call sites of its transforms in other files must too
    kept_names = {
        target.target.value
        for statement in module.body
        if id(statement) in kept and isinstance(statement, cst.SimpleStatementLine)
        for small in statement.body
        if isinstance(small, cst.Assign)
        for target in small.targets
        if isinstance(target.target, cst.Name)
    }
    exports += [
        ExportedTransform(name, INITIALIZER_EXPORT, False, False)
        for name in analysis.module_level_initializers()
        if name not in kept_names
    ]
    found = [(transform.name, transform, False) for transform in analysis.module_level_transforms()]
    found += [(name, transform, True) for name, transform in analysis.module_level_factories()]
    for name, transform, factory in found:
        if (marks.lines and hides_transform(analysis, transform)) or left_in_place(analysis, transform):
            continue  # the transform stays Haiku, so its call sites in other files must too
        streams, collections = analysis.features_of(transform)
        exports.append(
            ExportedTransform(
                name,
                transform.kind,
                transform.with_state,
                transform.apply_rng,
                transform.methods,
                streams,
                collections,
                factory,
            )
        )
    return exports


def _analysis_of(raw: bytes) -> FileAnalysis | None:
    """The analysis of the Python source ``raw`` alone (no project); None when the engine refuses it for its size,
    it does not parse, or the analysis fails (migrating the file itself reports why)."""
    import libcst as cst

    from h2f.analysis import FileAnalysis
    from h2f.engine import MAX_SOURCE_BYTES

    if len(raw) > MAX_SOURCE_BYTES:
        return None
    try:
        module = cst.parse_module(raw)
    except (cst.ParserSyntaxError, SyntaxError, UnicodeDecodeError):  # SyntaxError: a bad coding declaration
        return None
    try:
        return FileAnalysis.build(cst.MetadataWrapper(module, unsafe_skip_copy=True))
    except Exception:  # an h2f bug: migrating the file itself reports it (H2F003) and the run goes on
        return None


def _classes_left_in_place(raw: bytes) -> set[str] | None:
    """The module-level classes the migration of the Python source ``raw`` leaves as they were (H2F010, H2F011,
    their subclasses); None when it leaves the whole file as it is."""
    from h2f.engine import MigrationError, Options, migrate_source
    from h2f.files import DecodeError, decode

    try:
        migrated = migrate_source(decode(raw, "<exports>").text, Options(project={}))
        before, after = (
            {node.name: ast.dump(node) for node in ast.parse(text).body if isinstance(node, ast.ClassDef)}
            for text in (migrated.source, migrated.code)
        )
    except (MigrationError, DecodeError, SyntaxError):
        return None
    return {name for name, dump in before.items() if after.get(name) == dump} if migrated.changed else None


def mentions_project_transform(source: str | bytes, index: ProjectIndex) -> bool:
    """Cheap pre-filter, no parse: can ``source`` (text or raw bytes) import one of the project's transforms?

    Importing ``pkg.models.model`` in any spelling (``from pkg.models import model``, ``from .models import
    model``, ``import pkg.models``, then ``pkg.models.model``) writes both the transform's name and the last
    part of its module's name; a re-export (``from pkg import model``) writes the name in an import statement.
    """
    index = {key: exported for key, exported in index.items() if exported.kind not in CLASS_EXPORTS}
    if not index:
        return False
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    words = set(_WORD.findall(text))
    if any(_needed_words(key) <= words for key in index):
        return True
    imported = imported_words([source if isinstance(source, bytes) else source.encode("utf-8", "replace")])
    return any(exported_name(key).encode() in imported for key in index)


def exported_name(key: str) -> str:
    """The name an index key exports (``model`` of ``pkg.models.model``)."""
    return key.rpartition(":" if is_file_key(key) else ".")[2]


def _needed_words(key: str) -> set[str]:
    """The transform's name and the last part of its module's name (``models``, ``model``)."""
    name = exported_name(key)
    module = key[: -len(name) - 1]
    return {module.rpartition("/" if is_file_key(key) else ".")[2], name}
