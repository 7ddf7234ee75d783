"""Small libcst helpers shared by the rules: binding call arguments, building calls and keywords."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Sequence
from keyword import iskeyword

import libcst as cst
import libcst.matchers as m
from libcst._nodes.internal import CodegenState

from h2f.traversal import TOKENS, TypeDispatch, changed, fast_transform

_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
#: The tokens, names and literals: nothing in them but tokens (a name's parentheses), so a transformer with no hook
#: for a name or a literal need not enter them (a third of a file's other nodes are names).
_LEAVES = TOKENS | {cst.Name, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString}


def expr(source: str) -> cst.BaseExpression:
    """Parse an expression from source text (a dotted name, the usual case, is built without the parser; other
    texts are parsed once per process: the rules build the same few snippets in every file, and libcst's nodes
    are immutable, so one node can stand in any number of trees)."""
    names = source.split(".")
    if _DOTTED.fullmatch(source) is None or any(iskeyword(name) for name in names):
        return _parsed(source)  # (the parser's error for a keyword)
    first, *rest = names
    node: cst.BaseExpression = cst.Name(first)
    for name in rest:
        node = cst.Attribute(value=node, attr=cst.Name(name))
    return node


@functools.lru_cache(maxsize=4096)
def _parsed(source: str) -> cst.BaseExpression:
    return cst.parse_expression(source)


_EMPTY_MODULE = cst.Module(body=[])
_NOTHING = contextlib.nullcontext()


class Codegen(CodegenState):
    """libcst's code generation state, without the cost of ``record_syntactic_position``: libcst wraps most nodes'
    code generation in it, a generator-based context manager that does nothing unless positions are asked for;
    here a shared no-op one (code generation costs a third less)."""

    def record_syntactic_position(
        self, node: cst.CSTNode, *, start_node: cst.CSTNode | None = None, end_node: cst.CSTNode | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Do nothing (a subclass that records positions overrides it)."""
        return _NOTHING


def code_of(node: cst.CSTNode) -> str:
    """The source text of a node (libcst's ``Module.code_for_node`` of an empty module)."""
    state = Codegen(default_indent=_EMPTY_MODULE.default_indent, default_newline=_EMPTY_MODULE.default_newline)
    node._codegen(state)
    return "".join(state.tokens)


def bind_arguments(call: cst.Call, params: Sequence[str]) -> dict[str, cst.Arg] | None:
    """Name each argument of ``call`` after ``params`` (the callee's parameters in positional order).

    Returns None when the call has ``*args`` or ``**kwargs`` splats, or more positional arguments than
    ``params``: such calls cannot be mapped argument by argument.
    """
    bound: dict[str, cst.Arg] = {}
    position = 0
    for arg in call.args:
        if arg.star:
            return None
        if arg.keyword is None:
            if position >= len(params):
                return None
            bound[params[position]] = arg
            position += 1
        else:
            bound[arg.keyword.value] = arg
    return bound


# The whitespace and punctuation of the code the helpers below build, made once: tokens are immutable (libcst itself
# shares an Attribute's default dot), and libcst makes two whitespace nodes, each checked by a regular expression,
# for every argument or call built without them.
_NO_SPACE = cst.SimpleWhitespace("")
_EQUAL = cst.AssignEqual(whitespace_before=_NO_SPACE, whitespace_after=_NO_SPACE)
_COMMA = cst.Comma(whitespace_before=_NO_SPACE, whitespace_after=cst.SimpleWhitespace(" "))


def keyword(name: str, value: cst.BaseExpression) -> cst.Arg:
    """``name=value``, formatted the way black formats keywords."""
    return cst.Arg(
        value=value,
        keyword=cst.Name(name),
        equal=_EQUAL,
        whitespace_after_star=_NO_SPACE,
        whitespace_after_arg=_NO_SPACE,
    )


def positional(value: cst.BaseExpression) -> cst.Arg:
    """A positional argument."""
    return cst.Arg(value=value, whitespace_after_star=_NO_SPACE, whitespace_after_arg=_NO_SPACE)


def with_commas(args: Sequence[cst.Arg]) -> list[cst.Arg]:
    """Comma-separate ``args`` (``, `` between, none after the last)."""
    return [
        changed(arg, comma=_COMMA if index < len(args) - 1 else cst.MaybeSentinel.DEFAULT)
        for index, arg in enumerate(args)
    ]


def call(func: cst.BaseExpression, args: Sequence[cst.Arg]) -> cst.Call:
    """``func(args...)``."""
    return cst.Call(
        func=func, args=with_commas(list(args)), whitespace_after_func=_NO_SPACE, whitespace_before_args=_NO_SPACE
    )


def negate(value: cst.BaseExpression) -> cst.BaseExpression:
    """``not value``, simplified for literals and double negation."""
    if m.matches(value, m.Name("True")):
        return cst.Name("False")
    if m.matches(value, m.Name("False")):
        return cst.Name("True")
    if isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Not):
        inner = value.expression
        return inner.with_changes(lpar=[], rpar=[]) if isinstance(inner, (cst.Name, cst.Attribute, cst.Call)) else inner
    return cst.UnaryOperation(operator=cst.Not(), expression=parenthesized(value))


def parenthesized(value: cst.BaseExpression) -> cst.BaseExpression:
    """``value`` in parentheses unless it is an atom (a name, attribute, call, subscript or number) or has them:
    it can then be an operand of any operator."""
    if value.lpar or isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float)):
        return value
    return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


# The predicates below test types directly: libcst's matchers cost tens of microseconds a call, and rules ask
# them of nearly every node.


def is_docstring(statement: cst.CSTNode) -> bool:
    """Whether ``statement`` is a bare string literal (a docstring where it comes first)."""
    return (
        type(statement) is cst.SimpleStatementLine
        and len(statement.body) == 1
        and type(statement.body[0]) is cst.Expr
        and type(statement.body[0].value) in (cst.SimpleString, cst.ConcatenatedString)
    )


def string_argument(call: cst.Call, keyword: str, position: int | None = None) -> str | None:
    """The string literal ``call`` passes as ``keyword=`` (or, given ``position``, positionally there), or None."""
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    arg = positional[position] if position is not None and position < len(positional) else None
    arg = arg or next((arg for arg in call.args if arg.keyword is not None and arg.keyword.value == keyword), None)
    if arg is None or not isinstance(arg.value, cst.SimpleString):
        return None
    value = arg.value.evaluated_value
    return value if isinstance(value, str) else None


def is_keyword(arg: cst.Arg, name: str) -> bool:
    """Whether ``arg`` is passed as ``name=...``."""
    return arg.keyword is not None and arg.keyword.value == name


def is_none(node: cst.BaseExpression | None) -> bool:
    """Whether ``node`` is the literal ``None``."""
    return type(node) is cst.Name and node.value == "None"


def is_self_attribute(node: cst.CSTNode | None) -> bool:
    """Whether ``node`` is ``self.<attribute>``."""
    return type(node) is cst.Attribute and type(node.value) is cst.Name and node.value.value == "self"


def is_name_attribute(node: cst.CSTNode | None, *attributes: str) -> bool:
    """Whether ``node`` is ``<name>.<attribute>`` (a plain name's attribute), the attribute one of ``attributes``
    when any are given."""
    return (
        type(node) is cst.Attribute
        and type(node.value) is cst.Name
        and (not attributes or node.attr.value in attributes)
    )


def unpacks(assign: cst.Assign) -> bool:
    """Whether ``assign`` unpacks its value: one of its targets is a tuple or a list (``a, b = ...``)."""
    return any(type(target.target) in (cst.Tuple, cst.List) for target in assign.targets)


def unpacks_in_two(assign: cst.Assign) -> bool:
    """Whether ``assign`` unpacks its value into two plain names: ``a, b = ...`` (``(a, b)``, ``[a, b]``)."""
    if len(assign.targets) != 1:
        return False
    target = assign.targets[0].target
    return (
        type(target) in (cst.Tuple, cst.List)
        and len(target.elements) == 2  # type: ignore[attr-defined]
        and all(type(each) is cst.Element and type(each.value) is cst.Name for each in target.elements)  # type: ignore[attr-defined]
    )


def is_zero(node: cst.BaseExpression) -> bool:
    """Whether ``node`` is the literal 0 or 0.0."""
    return isinstance(node, (cst.Integer, cst.Float)) and float(node.value) == 0.0


def dotted_name(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if type(node) is cst.Name:
        return node.value
    if type(node) is cst.Attribute:
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


def imported_module(statement: cst.ImportFrom) -> str:
    """The module a ``from … import`` names, as written: ``pkg.models``, ``.models``, ``..``."""
    module = dotted_name(statement.module) if statement.module is not None else None
    return "." * len(statement.relative) + (module or "")


def self_attribute(name: str) -> cst.Attribute:
    """``self.<name>``."""
    return cst.Attribute(value=cst.Name("self"), attr=cst.Name(name))


class _NameReplacer(TypeDispatch):
    def __init__(self, mapping: dict[str, cst.BaseExpression]) -> None:
        super().__init__()
        self.mapping = mapping

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        return False  # only the object of an attribute access is a name use: see leave_Attribute

    # Each hook returns the node itself when nothing in it changed: an untouched node keeps its identity, by which
    # later passes find it (the leftovers rule maps what it reports back to the original's position).
    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        value = fast_transform(original_node.value, self, TOKENS)
        return updated_node if value is updated_node.value else updated_node.with_changes(value=value)

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        if updated_node.keyword is original_node.keyword:
            return updated_node
        return updated_node.with_changes(keyword=original_node.keyword)

    def leave_Param(self, original_node: cst.Param, updated_node: cst.Param) -> cst.Param:
        if updated_node.name is original_node.name:
            return updated_node
        return updated_node.with_changes(name=original_node.name)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        return self.mapping.get(original_node.value, updated_node)


class _DropModuleNames(TypeDispatch):
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        args = [arg for arg in updated_node.args if not (arg.keyword is not None and arg.keyword.value == "name")]
        if len(args) == len(updated_node.args):
            return updated_node
        if args:
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(args=args)


def without_module_names(statement: cst.BaseStatement) -> cst.BaseStatement:
    """``statement`` with the ``name=`` of every call in it dropped: Linen names the submodules ``setup()`` builds
    after their attributes, and rejects ``name=`` there."""
    return fast_transform(statement, _DropModuleNames(), _LEAVES)  # type: ignore[no-any-return]


def replace_names(node: cst.CSTNode, mapping: dict[str, cst.BaseExpression]) -> cst.CSTNode:
    """Replace uses of the names in ``mapping`` (not attribute names, keywords or parameters) inside ``node``."""
    return fast_transform(node, _NameReplacer(mapping), TOKENS)


class _SelfAttributeRenamer(TypeDispatch):
    def __init__(self, renames: dict[str, str]) -> None:
        super().__init__()
        self.renames = renames

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        value = updated_node.value
        if type(value) is cst.Name and value.value == "self" and updated_node.attr.value in self.renames:
            return updated_node.with_changes(attr=cst.Name(self.renames[updated_node.attr.value]))
        return updated_node


def rename_self_attributes(node: cst.CSTNode, renames: dict[str, str]) -> cst.CSTNode:
    """Rename ``self.<old>`` to ``self.<new>`` everywhere inside ``node``."""
    return fast_transform(node, _SelfAttributeRenamer(renames), _LEAVES) if renames else node


class _ReplaceMatching(TypeDispatch):
    def __init__(
        self, matcher: m.BaseMatcherNode, replacement: cst.CSTNode | Callable[[cst.CSTNode], cst.CSTNode]
    ) -> None:
        super().__init__()
        self.matcher = matcher
        self.node_type = getattr(cst, type(matcher).__name__)  # m.Subscript matches cst.Subscript nodes only
        self.replacement = replacement

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        if type(original_node) is not self.node_type or not m.matches(original_node, self.matcher):
            return updated_node
        if isinstance(self.replacement, cst.CSTNode):
            return self.replacement.deep_clone()  # each occurrence its own node, as libcst's m.replace gives
        return self.replacement(updated_node)


def replace_matching(
    node: cst.CSTNode, matcher: m.BaseMatcherNode, replacement: cst.CSTNode | Callable[[cst.CSTNode], cst.CSTNode]
) -> cst.CSTNode:
    """libcst's ``m.replace`` for a node matcher that captures nothing: every node below ``node`` that matched it
    in ``node`` is replaced by ``replacement`` (or by ``replacement(the node as rewritten inside)``), without
    libcst's traversal (which rebuilds every node and tries the matcher on each)."""
    return fast_transform(node, _ReplaceMatching(matcher, replacement), TOKENS)  # type: ignore[no-any-return]


def one_argument_per_line(node: cst.Call, indent: str, step: str) -> cst.Call:
    """``node`` with each argument on its own line (black's style for calls that do not fit), for a call in
    a statement indented by ``indent``; ``step`` is one indentation level of the file."""

    def newline(level: str) -> cst.ParenthesizedWhitespace:
        return cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(), empty_lines=[], indent=False, last_line=cst.SimpleWhitespace(level)
        )

    args = [
        arg.with_changes(
            comma=cst.Comma(whitespace_after=newline(indent + step if index < len(node.args) - 1 else indent))
        )
        for index, arg in enumerate(node.args)
    ]
    return node.with_changes(whitespace_before_args=newline(indent + step), args=args)


def annotated_field(statement: cst.BaseStatement) -> cst.AnnAssign | None:
    """The field a class-body ``statement`` declares (``features: int``, ``scale: float = 1.0``), if it is one."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
            return small
    return None
