"""The rule contract and the registry that discovers the rule modules in ``h2f.rules``.

A rule handles one Haiku idiom. It is a class with metadata (its diagnostic code, the Haiku APIs it
handles, the targets it supports) and ``leave_*`` hooks that the engine calls during its single traversal of
a file, in the order the registry gives (:attr:`Rule.order`). A hook receives the original node (whose
metadata, such as qualified names, the rule may query through :class:`~h2f.context.MigrationContext`) and
the node as already rewritten by inner nodes and earlier rules (the original node itself when nothing inside it
changed: :func:`h2f.traversal.fast_transform`); it returns a replacement or ``None`` to leave the node to the
next rule. Rules never see whitespace or punctuation nodes unless one of them has a hook for their type.

A rule that cannot translate a node faithfully calls ``ctx.keep(node, code, message)`` (from the node's ``visit_``
hook or its ``leave_`` hook): the node then goes into the output exactly as it was, children included, whatever
the rules made of them; on the NNX target the whole file stays as it was (:mod:`h2f.rules.nnx_target`).
"""

from __future__ import annotations

import enum
import importlib
import inspect
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import libcst as cst

    from h2f.context import MigrationContext

TARGETS = ("linen", "nnx")


class Trigger(enum.IntFlag):
    """What a rule's ``leave_Name``/``leave_Attribute``/``leave_Call`` hook acts on (:attr:`Rule.triggers`): the
    dispatcher works out once per node which of these it is, and calls the hook only if one of its own is."""

    #: A Haiku name (``ctx.haiku_name`` is not None); a call of one (``hk.Linear(2)``, ``hk.relu(x)``).
    HAIKU = 1
    #: A call of what a call of a Haiku name made (:meth:`~h2f.analysis.FileAnalysis.constructor_of`):
    #: ``hk.Linear(2)(x)``, ``self.bn(x)`` after ``self.bn = hk.BatchNorm(...)`` in ``__init__``.
    MADE = 2
    #: A call of a module class this file defines, or imports from another file of the run (``Block(8)``).
    MODULE = 4
    #: An attribute or call the rule itself announced it acts on (:meth:`Rule.announce`).
    ANNOUNCED = 8


class Rule:
    """Base class of every rule. Subclasses set the class attributes and override hooks."""

    #: Diagnostic code of the problems this rule reports (``H2F0nn``).
    code: ClassVar[str]
    #: Qualified Haiku names this rule translates (for ``h2f rules`` and the README table).
    haiku_apis: ClassVar[tuple[str, ...]]
    #: Targets the rule can translate to.
    targets: ClassVar[frozenset[str]] = frozenset({"linen"})
    #: Position in the traversal; lower runs first on the same node.
    order: ClassVar[int] = 100
    #: The rule's ``leave_Name``/``leave_Attribute``/``leave_Call`` hooks that return None and do nothing on most
    #: nodes of their type → the nodes they may act on (most names and calls of a file are none of them; a name is
    #: only ``HAIKU`` or not): the dispatcher calls them on those only. A hook not listed is called on every node of
    #: its type.
    triggers: ClassVar[Mapping[str, Trigger]] = {}
    #: The Haiku names whose calls (``Trigger.HAIKU``), or calls of what they made (``Trigger.MADE``), the rule's
    #: ``leave_Call`` hook acts on; None: any.
    call_apis: ClassVar[frozenset[str] | None] = None

    def __init__(self, ctx: MigrationContext) -> None:
        self.ctx = ctx

    def announce(self, nodes: Iterable[cst.CSTNode]) -> None:
        """Say that this rule acts on the original ``nodes`` (learned before the traversal, or from a node it left
        earlier): its hooks whose trigger has ``Trigger.ANNOUNCED`` are called on them when the traversal leaves
        them."""
        announced = self.ctx.announced
        for node in nodes:
            announced[id(node)] = announced.get(id(node), frozenset()) | {type(self)}

    @classmethod
    def name(cls) -> str:
        """The rule's name: its module's name within ``h2f.rules``."""
        return cls.__module__.rsplit(".", 1)[-1]

    @classmethod
    def summary(cls) -> str:
        """The first paragraph of the rule's docstring, on one line."""
        doc = inspect.getdoc(cls) or ""
        return " ".join(doc.split("\n\n", 1)[0].split())


@cache
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule in ``h2f.rules``, in traversal order."""
    import pkgutil  # (here: a run answered by the cache, which needs no rule, does not pay its import)

    import h2f.rules as package

    found: list[type[Rule]] = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Rule)
                and value is not Rule
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return tuple(sorted(found, key=lambda rule: (rule.order, rule.name())))


#: The NNX target's rules that build and call a model in the nnx.bridge fallback.
BRIDGE_NNX_RULES = frozenset({"nnx_transform", "nnx_target"})


def bridge_rules(select: frozenset[str] = frozenset(), ignore: frozenset[str] = frozenset()) -> list[type[Rule]]:
    """The rules of the NNX target's nnx.bridge fallback: the Linen target's (which leave ``init``/``apply`` sites
    alone there) and the NNX target's that wrap each model in ``nnx.bridge.ToNNX`` and call it."""
    nnx = [rule for rule in select_rules("nnx", select, ignore) if rule.name() in BRIDGE_NNX_RULES]
    return sorted({*select_rules("linen", select, ignore), *nnx}, key=lambda rule: (rule.order, rule.name()))


def select_rules(
    target: str, select: frozenset[str] = frozenset(), ignore: frozenset[str] = frozenset()
) -> list[type[Rule]]:
    """The rules that run for ``target``, filtered by rule name or code (``select`` empty means all)."""
    return list(_selected_rules(all_rules(), target, frozenset(select), frozenset(ignore)))


@cache
def _selected_rules(
    rules: tuple[type[Rule], ...], target: str, select: frozenset[str], ignore: frozenset[str]
) -> tuple[type[Rule], ...]:
    """:func:`select_rules` among ``rules``, chosen once per run rather than for every file."""
    chosen = []
    for rule in rules:
        keys = {rule.name(), rule.code}
        if target not in rule.targets:
            continue
        if select and not keys & select:
            continue
        if keys & ignore:
            continue
        chosen.append(rule)
    return tuple(chosen)
