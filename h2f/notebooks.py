"""Jupyter notebooks (``.ipynb``): the code cells are migrated as one program, the rest of the file is kept.

A notebook is one program: its cells run in one namespace, the imports of the first cell serve all the others.
So the code cells are joined into one module, with a marker statement (``import __h2f_cell_N__``) at the start of
each cell after the first, migrated like a ``.py`` file, and split back at the markers; the new imports land in
the first code cell, and a Haiku import is removed only when no cell uses it any more.

IPython syntax is left exactly as written:

- a cell starting with a cell magic (``%%bash``, ``%%timeit``...) is not Python: it is not migrated;
- a line magic or shell escape (``%matplotlib inline``, ``!pip install``, ``files = !ls``, ``obj?``) is
  replaced, for the migration only, by a placeholder statement at the same indentation, and put back
  afterwards; the Python lines around it are migrated;
- a cell that is not Python for another reason (other IPython syntax) is not migrated.

A cell left unmigrated that mentions haiku is reported (H2F006), so nothing is skipped silently. Diagnostics
name the cell: ``path:cell N:line:col`` where N counts every cell of the notebook from 1 (markdown cells
included) and the line is the line within the cell.

Only the ``source`` of changed code cells changes: outputs, execution counts, metadata, the other cells, the
order of the keys and the JSON layout (indentation, escaping, final newline) are kept. The layout is detected
from the file and checked by writing the unchanged notebook back: if that does not give the file's exact
bytes, the notebook is not rewritten (H2F007). A notebook whose code nothing changes is never rewritten.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from h2f.diagnostics import Diagnostic
from h2f.engine import MAX_SOURCE_BYTES, MigrationError, MigrationResult, Options, migrate_source

# Placeholders are import statements: a notebook's first cells are usually imports and magics, and the
# imports a migration adds go after the module's leading block of imports; it must run through them.
_MARKER = "import __h2f_cell_{}__"
_MARKER_LINE = re.compile(r"import __h2f_cell_(\d+)__\n")
_MAGIC = "import __h2f_magic_{}__"
_MAGIC_LINE = re.compile(r"^([ \t]*)import __h2f_magic_(\d+)__[ \t]*$")
#: ``%magic``, ``!shell``, ``x = !shell``, ``x = %magic``, ``obj?``, ``?obj``, ``obj??``.
_LINE_MAGIC = re.compile(
    r"^[ \t]*(?:[%!]|[\w.]+(?:[ \t]*,[ \t]*[\w.]+)*[ \t]*=[ \t]*[%!]|\?+[\w.]+[ \t]*$|[\w.]+\?+[ \t]*$)"
)
_WORD_HAIKU = re.compile(r"\bhaiku\b|\bhk\.")


@dataclasses.dataclass
class _Cell:
    """One code cell as migrated: its position, its text with placeholders, and the lines they replace."""

    index: int  # position among all cells
    text: str  # ends with a newline
    magics: dict[int, str]  # placeholder number -> original line (without its newline)
    trailing_newline: bool


def migrate_notebook(text: str, options: Options, path: str) -> MigrationResult:
    """Migrate the code cells of the notebook ``text`` (its JSON) read from ``path``; the result is JSON too."""
    notebook = _load(text, path)
    if not _is_python(notebook):
        return MigrationResult(text, text)
    cells, warnings, left_as_written = _code_cells(notebook, path)
    if not cells:
        return MigrationResult(text, text, tuple(warnings))
    module, origins = _join(cells, left_as_written)
    if len(module.encode()) > MAX_SOURCE_BYTES:
        raise MigrationError(
            Diagnostic(path, 1, 1, "H2F001", f"the code cells hold more than {MAX_SOURCE_BYTES} bytes", "error")
        )
    try:
        result = migrate_source(module, options, path)
    except MigrationError as error:
        raise MigrationError(_relocate(error.diagnostic, origins, path)) from None
    diagnostics = tuple(sorted(warnings + [_relocate(d, origins, path) for d in result.diagnostics]))
    if not result.changed:
        return MigrationResult(text, text, diagnostics)
    new_sources = _split(result.code, cells, path, kept=bool(left_as_written))
    for cell, new_text in zip(cells, new_sources):
        original = notebook["cells"][cell.index]
        if new_text != _source_text(original.get("source", "")):
            original["source"] = _source_like(new_text, original.get("source", ""))
    return MigrationResult(text, _dump_like(notebook, text, path), diagnostics)


def notebook_program(text: str, path: str) -> tuple[str, list[tuple[int, int] | None]] | None:
    """The code cells of the notebook ``text`` (read from ``path``) as the one module h2f migrates, and for each
    of its lines the (cell index, line in the cell) it comes from (:func:`locate`); None for a file that is no
    Python notebook or has no code cell h2f reads."""
    try:
        notebook = _load(text, path)
    except MigrationError:
        return None
    cells, _, left_as_written = _code_cells(notebook, path) if _is_python(notebook) else ([], [], [])
    return _join(cells, left_as_written) if cells else None


def _code_cells(notebook: dict[str, Any], path: str) -> tuple[list[_Cell], list[Diagnostic], list[str]]:
    """The code cells of ``notebook`` that h2f migrates (magic lines replaced by placeholders), the warnings
    about the Haiku it leaves as written (H2F006), and the code it leaves as written (cells, magic lines)."""
    cells, warnings, magic_count = [], [], 0
    left_as_written: list[str] = []  # code the migration does not see, but which may use what it imports
    for index, cell in enumerate(notebook["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _source_text(cell.get("source", ""))
        prepared, magics = _replace_magics(source, magic_count)
        magic_count += len(magics)
        reason = _not_python(source, prepared)
        if reason is not None:
            left_as_written.append(source)
            if _WORD_HAIKU.search(source):
                warnings.append(Diagnostic(cell_path(path, index), 1, 1, "H2F006", f"{reason}: not migrated"))
            continue
        left_as_written.extend(magics.values())
        for line_number, line in _magic_rows(prepared, magics):
            if _WORD_HAIKU.search(line):
                message = "IPython magic left as written, not migrated"
                warnings.append(Diagnostic(cell_path(path, index), line_number, 1, "H2F006", message))
        body = prepared if prepared.endswith("\n") or not prepared else prepared + "\n"
        cells.append(_Cell(index, body, magics, source.endswith("\n")))
    return cells, warnings, left_as_written


# ----------------------------------------------------------------------------------------- reading cells


def _load(text: str, path: str) -> dict[str, Any]:
    try:
        notebook = json.loads(text)
    except ValueError as error:
        raise MigrationError(Diagnostic(path, 1, 1, "H2F001", f"not a Jupyter notebook: {error}", "error")) from None
    if isinstance(notebook, dict) and "worksheets" in notebook:
        message = "a notebook of nbformat 3, which h2f does not read: convert it with `jupyter nbconvert --to notebook`"
        raise MigrationError(Diagnostic(path, 1, 1, "H2F001", message, "error"))
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise MigrationError(Diagnostic(path, 1, 1, "H2F001", "not a Jupyter notebook: no list of cells", "error"))
    for index, cell in enumerate(notebook["cells"]):
        source = cell.get("source", "") if isinstance(cell, dict) else None
        if not isinstance(source, str) and not (isinstance(source, list) and all(isinstance(s, str) for s in source)):
            problem = (
                "a source that is neither a string nor a list of strings" if isinstance(cell, dict) else "no object"
            )
            raise MigrationError(
                Diagnostic(path, 1, 1, "H2F001", f"not a Jupyter notebook: cell {index + 1} is {problem}", "error")
            )
    return notebook


def _is_python(notebook: dict[str, Any]) -> bool:
    """A notebook says which language its kernel runs; no word on it means Python."""
    metadata = notebook.get("metadata")
    if not isinstance(metadata, dict):
        return True
    language = (metadata.get("kernelspec") or {}).get("language") or (metadata.get("language_info") or {}).get("name")
    return not isinstance(language, str) or language.lower() == "python"


def _source_text(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else source


def _source_like(text: str, original: str | list[str]) -> str | list[str]:
    """``text`` in the form the cell had: one string, or a list of lines (each ending with its newline)."""
    return re.findall(r"[^\n]*\n|[^\n]+", text) if isinstance(original, list) else text


def cell_path(path: str, index: int) -> str:
    """How a diagnostic names the cell ``index`` (from 0) of the notebook at ``path``: ``nb.ipynb:cell 3``."""
    return f"{path}:cell {index + 1}"


def split_cell_path(path: str) -> tuple[str, int | None]:
    """``("nb.ipynb", 3)`` for a diagnostic path ``nb.ipynb:cell 3``; ``(path, None)`` for any other path."""
    found = re.fullmatch(r"(.*\.ipynb):cell (\d+)", path)
    return (found[1], int(found[2])) if found else (path, None)


def _replace_magics(source: str, first: int) -> tuple[str, dict[int, str]]:
    """Replace each line magic by a placeholder numbered from ``first``, at its indentation; return the text
    and the replaced lines by number. A cell that is Python as it stands has no magics (``% x`` may go on)."""
    try:
        ast.parse(source)
        return source, {}
    except SyntaxError:
        pass
    magics: dict[int, str] = {}
    lines = source.split("\n")
    for row, line in enumerate(lines):
        if _LINE_MAGIC.match(line) and not line.lstrip().startswith("%%"):
            number = first + len(magics)
            magics[number] = line
            lines[row] = line[: len(line) - len(line.lstrip())] + _MAGIC.format(number)
    return "\n".join(lines), magics


def _magic_rows(prepared: str, magics: dict[int, str]) -> list[tuple[int, str]]:
    """(line number in the cell, original line) of each magic."""
    rows = []
    for row, line in enumerate(prepared.split("\n"), start=1):
        match = _MAGIC_LINE.match(line)
        if match and int(match.group(2)) in magics:
            rows.append((row, magics[int(match.group(2))]))
    return rows


def _not_python(source: str, prepared: str) -> str | None:
    """Why the cell cannot be migrated, or None."""
    first = next((line for line in source.splitlines() if line.strip()), "")
    if first.lstrip().startswith("%%"):
        return f"cell magic {first.split()[0]}"
    if "__h2f_" in source:
        return "the cell uses h2f's own placeholder names"
    try:
        ast.parse(prepared)
    except SyntaxError as error:
        return f"not Python ({error.msg}, line {error.lineno})"
    return None


# --------------------------------------------------------------------------------- one module, and back


def _join(cells: list[_Cell], left_as_written: list[str]) -> tuple[str, list[tuple[int, int] | None]]:
    """The module of the cells, and for each of its lines the (cell index, line in cell) it comes from.

    The words of the code ``left_as_written`` end the module in a string, so that an import they may use is not
    removed as unused.
    """
    kept_words = " ".join(sorted(set(re.findall(r"\w+", "\n".join(left_as_written)))))
    parts: list[str] = []
    origins: list[tuple[int, int] | None] = []
    for position, cell in enumerate(cells):
        if position:
            parts.append(_MARKER.format(position) + "\n")
            origins.append(None)
        parts.append(cell.text)
        origins.extend((cell.index, row) for row in range(1, cell.text.count("\n") + 1))
    if kept_words:
        parts.append(_MARKER.format(len(cells)) + "\n" + f'__h2f_kept__ = "{kept_words}"\n')
    return "".join(parts), origins


def _relocate(diagnostic: Diagnostic, origins: list[tuple[int, int] | None], path: str) -> Diagnostic:
    """A diagnostic of the joined module, pointed at its cell and line there."""
    found = locate(origins, diagnostic.line)
    if found is None:
        return diagnostic
    index, line = found
    return diagnostic._replace(path=cell_path(path, index), line=line)


def locate(origins: list[tuple[int, int] | None], line: int) -> tuple[int, int] | None:
    """Where the ``line`` of a notebook's joined module (:func:`notebook_program`) is: (cell index, line in the
    cell); None past its end."""
    row = line - 1
    while 0 <= row < len(origins) and origins[row] is None:
        row += 1  # a marker line: the start of the next cell
    return origins[row] if 0 <= row < len(origins) else None


def _split(code: str, cells: list[_Cell], path: str, kept: bool) -> list[str]:
    """The migrated text of each cell, magics put back; :class:`MigrationError` if the cells cannot be told
    apart or a magic line is lost (the notebook is then left untouched)."""
    chunks = _MARKER_LINE.split(code)
    texts, numbers = chunks[0::2], [int(number) for number in chunks[1::2]]
    if numbers != list(range(1, len(cells) + kept)):
        raise _layout_error(path, "the migration moved code across cells")
    texts = texts[: len(cells)]
    for position in range(1, len(texts)):
        texts[position - 1], texts[position] = _move_added_imports(
            texts[position - 1], texts[position], cells[position]
        )
    result = []
    for cell, text in zip(cells, texts):
        restored = _restore_magics(text, cell, path)
        if not cell.trailing_newline and restored.endswith("\n"):
            restored = restored[:-1]
        result.append(restored)
    return result


_IMPORT_LINE = re.compile(r"(?:import [\w.]+(?: as \w+)?|from [\w.]+ import [\w, ]+)\n")


def _move_added_imports(previous: str, text: str, cell: _Cell) -> tuple[str, str]:
    """Imports the migration added at the start of a cell (right after the block of imports that ends the
    cell before, where they were inserted) go to the end of that block (or into that cell, if the migration
    emptied it)."""
    lines = re.findall(r"[^\n]*\n", text)
    original = set(re.findall(r"[^\n]*\n", cell.text))
    added = 0
    while added < len(lines) and _IMPORT_LINE.fullmatch(lines[added]) and lines[added] not in original:
        added += 1
    ends_with_import = bool(re.search(r"^(?:import|from) [^\n]*\n\s*\Z", previous, re.MULTILINE))
    if not added or not (ends_with_import or not previous.strip()):
        return previous, text
    rest = added
    while rest < len(lines) and not lines[rest].strip():
        rest += 1  # the blank line the migration put after them
    kept = previous.rstrip("\n") + "\n" if previous.strip() else ""
    return kept + "".join(lines[:added]), "".join(lines[rest:]) + text[len("".join(lines)) :]


def _restore_magics(text: str, cell: _Cell, path: str) -> str:
    lines = text.split("\n")
    found = set()
    for row, line in enumerate(lines):
        match = _MAGIC_LINE.match(line)
        if match:
            number = int(match.group(2))
            if number not in cell.magics or number in found:
                raise _layout_error(path, "the migration moved an IPython magic line")
            found.add(number)
            lines[row] = cell.magics[number]
    if found != set(cell.magics):
        raise _layout_error(path, "the migration removed an IPython magic line")
    return "\n".join(lines)


def _layout_error(path: str, why: str) -> MigrationError:
    return MigrationError(Diagnostic(path, 1, 1, "H2F007", f"notebook left untouched: {why}", "error"))


# ------------------------------------------------------------------------------------------ JSON layout


def _dump_like(notebook: dict[str, Any], original_text: str, path: str) -> str:
    """Serialize ``notebook`` in the layout of ``original_text`` (detected, then proven on the original)."""
    original = json.loads(original_text)
    for style in _styles(original_text):
        if _dump(original, style) == original_text:
            return _dump(notebook, style)
    raise _layout_error(path, "its JSON layout could not be reproduced exactly")


def _styles(text: str) -> list[dict[str, Any]]:
    """Candidate ``json.dumps`` settings for ``text``: nbformat's (indent 1), and what the text shows."""
    match = re.match(r"\{\r?\n( +|\t)", text)
    indents: list[int | str | None] = (
        [match.group(1) if match.group(1) == "\t" else len(match.group(1))] if match else [None]
    )
    styles = []
    for indent in indents:
        for ensure_ascii in (False, True):
            for sort_keys in (False, True):
                separators = (",", ": ") if indent is not None else (", ", ": ")
                styles.append(
                    {
                        "indent": indent,
                        "ensure_ascii": ensure_ascii,
                        "sort_keys": sort_keys,
                        "separators": separators,
                        "newline": text.endswith("\n"),
                        # a Windows checkout or save: every line break of the layout is CRLF (JSON strings
                        # cannot hold a raw line break, so those of the layout are all there are)
                        "crlf": "\r\n" in text,
                    }
                )
    return styles


def _dump(notebook: dict[str, Any], style: dict[str, Any]) -> str:
    text = json.dumps(notebook, **{key: value for key, value in style.items() if key not in ("newline", "crlf")})
    text = text + "\n" if style.get("newline", True) else text
    return text.replace("\n", "\r\n") if style.get("crlf") else text


# ------------------------------------------------------------------------------------------------ diffs


def notebook_diff(path: Path | str, source: str, code: str) -> str:
    """Unified diffs of the code cells that differ between two versions of a notebook, one per cell, labelled
    ``a/path:cell N`` / ``b/path:cell N`` (for reading: patch cannot apply them to the JSON)."""
    before, after = json.loads(source)["cells"], json.loads(code)["cells"]
    name = Path(path).as_posix()
    import difflib  # (here: a run that shows no diff, as a cached re-run, does not pay its import)

    parts = []
    for index, (old, new) in enumerate(zip(before, after)):
        old_text, new_text = _source_text(old.get("source", "")), _source_text(new.get("source", ""))
        if old_text == new_text:
            continue
        label = f"{name}:cell {index + 1}"
        lines = difflib.unified_diff(_lines(old_text), _lines(new_text), f"a/{label}", f"b/{label}")
        parts.append(
            "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of cell\n" for line in lines)
        )
    return "".join(parts)


def _lines(text: str) -> list[str]:
    return re.findall(r"[^\n]*\n|[^\n]+", text)
