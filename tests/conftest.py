"""Shared test helpers.

``fake_rules`` installs two tiny test-only rules in place of the real registry, so the file and CLI tests do
not depend on which rules exist yet: ``dense`` rewrites ``hk.Linear`` into ``nn.Dense`` and ``warn_param``
reports a warning on every ``hk.get_parameter`` call without changing anything.
"""

from __future__ import annotations

import libcst as cst
import pytest

import h2f.rule
from h2f.rule import Rule


class Dense(Rule):
    """Test rule: hk.Linear becomes nn.Dense."""

    code = "H2F020"
    haiku_apis = ("haiku.Linear",)
    targets = frozenset({"linen"})

    @classmethod
    def name(cls) -> str:
        return "dense"

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression | None:
        if self.ctx.haiku_name(original_node) == "haiku.Linear":
            return self.ctx.linen("Dense")
        return None


class WarnParam(Rule):
    """Test rule: warns on hk.get_parameter, changes nothing."""

    code = "H2F070"
    haiku_apis = ("haiku.get_parameter",)
    targets = frozenset({"linen"})

    @classmethod
    def name(cls) -> str:
        return "warn_param"

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> None:
        if self.ctx.haiku_name(original_node.func) == "haiku.get_parameter":
            self.ctx.report(original_node, self.code, "hk.get_parameter left in place")


@pytest.fixture
def fake_rules(monkeypatch: pytest.MonkeyPatch) -> tuple[type[Rule], ...]:
    """Replace the rule registry by the test rules above (linen only, so --to nnx stays unsupported)."""
    rules: tuple[type[Rule], ...] = (Dense, WarnParam)
    monkeypatch.setattr(h2f.rule, "all_rules", lambda: rules)
    return rules


#: A Haiku file that the ``dense`` rule changes (LF line endings).
HAIKU_SOURCE = "import haiku as hk\n\n\ndef forward(x):\n    return hk.Linear(3)(x)\n"

#: A file that mentions haiku, parses, but has nothing the test rules rewrite.
HAIKU_UNCHANGED_SOURCE = "import haiku as hk\n\nTRANSFORM = hk.transform\n"

#: Plain Python without any mention of the library.
PLAIN_SOURCE = "import numpy as np\n\nX = np.zeros(3)\n"

#: Haiku source that is not Python 3 (a Python 2 print statement on line 3).
BROKEN_SOURCE = "import haiku as hk\n\nprint 'layer', hk.Linear(3)\n"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-fixtures",
        action="store_true",
        help="rewrite the expected files (linen.py, warnings.txt) of fixtures/ from the current migration",
    )


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets an empty result cache of its own (see h2f.cache), never the user's."""
    monkeypatch.setenv("H2F_CACHE_DIR", str(tmp_path_factory.mktemp("h2f-cache")))
