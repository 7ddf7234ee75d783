"""Haiku imports a migration leaves unused are removed, and only those (h2f.imports, no scope analysis)."""

from __future__ import annotations

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from h2f import traversal
from h2f.imports import AddImports, RemoveUnusedImports


def remove_haiku(source: str) -> str:
    context = CodemodContext()
    RemoveImportsVisitor.remove_unused_import(context, "haiku", asname="hk")
    return cst.parse_module(source).visit(RemoveUnusedImports(context)).code


def test_unused_import_is_removed_even_if_a_docstring_or_attribute_names_it() -> None:
    source = '"""Uses hk no more."""\nimport haiku as hk\nimport flax.linen as nn\n\nx = nn.hk\n'
    assert remove_haiku(source) == '"""Uses hk no more."""\nimport flax.linen as nn\n\nx = nn.hk\n'


def test_import_still_used_by_a_name_or_a_string_annotation_is_kept() -> None:
    for use in ["y = hk.Linear\n", "def f(p: 'hk.Params') -> None: ...\n", "__all__ = ['hk']\n"]:
        source = f"import haiku as hk\n{use}"
        assert remove_haiku(source) == source


def test_only_scheduled_imports_are_removed() -> None:
    source = "import haiku as hk\nimport os\n"
    assert remove_haiku(source) == "import os\n"


def test_blank_lines_and_comments_above_a_removed_import_stay() -> None:
    """The import-group separation and the user's comments belong to the file, not to the haiku import."""
    cases = {
        "from typing import Any\n\nimport haiku as hk\nimport jax\n": "from typing import Any\n\nimport jax\n",
        "import os\n\n# models\nimport haiku as hk  # nets\n\nimport jax\n": (
            "import os\n\n# models\n# nets\n\nimport jax\n"
        ),
        "import os\n\nimport haiku as hk\n\nimport jax\n": "import os\n\nimport jax\n",
        "import os\n# last\nimport haiku as hk\n": "import os\n# last\n",
        # the import was the file's first line: the next one does not start with a blank line
        "import haiku as hk\n\nimport jax\n": "import jax\n",
        "import haiku as hk\n\n# jax\nimport jax\n": "# jax\nimport jax\n",
    }
    for source, expected in cases.items():
        assert remove_haiku(source) == expected


def test_added_imports_match_libcst() -> None:
    source = '"""Doc."""\nimport jax\nfrom flax import struct\n\ndef f():\n    import os\n    return jax\n'
    results = []
    for visitor in (AddImports, AddImportsVisitor):
        context = CodemodContext()
        AddImportsVisitor.add_needed_import(context, "flax.linen", asname="nn")
        AddImportsVisitor.add_needed_import(context, "flax", "struct")
        AddImportsVisitor.add_needed_import(context, "typing", "Any")
        results.append(cst.parse_module(source).visit(visitor(context)).code)
    assert results[0] == results[1]
    assert "import flax.linen as nn" in results[0] and results[0].count("struct") == 1


def test_the_nodes_whose_children_the_used_names_skip_hold_only_tokens() -> None:
    """_UsedNames reads a Name's, a string's text and stops there: nothing but tokens may be under them."""
    for kind in (cst.Name, cst.SimpleString, cst.FormattedStringText):
        for field, allowed in traversal._field_types(kind).items():
            assert allowed is not None and allowed <= traversal.TOKENS, (kind.__name__, field)
