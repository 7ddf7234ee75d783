"""``class M(hk.Module)`` → ``class M(nn.Module)``, a dataclass.

Constructor parameters become fields in order, with their annotations (``Any`` where there is none) and
defaults; ``name`` and ``super().__init__(name=name)`` go (every Linen module takes ``name``). Attributes
that only store a parameter under another name (``self._size = size``) are read through the field
(``self.size``). Everything else the constructor does — submodules, derived attributes — moves to
``setup()``, with parameters read as fields. The one method that builds submodules inline becomes
``@nn.compact``. Constructors Linen cannot express (``*args``, reassigned parameters, attributes that shadow
a field) and subclasses of concrete Haiku layers are left in place and reported, and so are their subclasses;
code that becomes Flax and still builds such a class is reported where it builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import libcst as cst

from h2f.analysis import ModuleClass
from h2f.names import haiku_module_name
from h2f.project import KEPT_CLASS_EXPORT
from h2f.rule import Rule, Trigger
from h2f.syntax import (
    annotated_field,
    bind_arguments,
    code_of,
    expr,
    is_docstring,
    is_self_attribute,
    rename_self_attributes,
    replace_names,
    self_attribute,
    string_argument,
    without_module_names,
)
from h2f.traversal import TOKENS, TypeDispatch, fast_transform, walk

if TYPE_CHECKING:
    from h2f.context import MigrationContext


class ModuleClassRule(Rule):
    """Turn ``hk.Module`` subclasses into Linen dataclass modules with fields, ``setup`` and ``@nn.compact``."""

    code = "H2F010"
    haiku_apis = ("haiku.Module",)
    order = 60
    triggers = {"leave_Call": Trigger.MODULE}

    def __init__(self, ctx: MigrationContext) -> None:
        super().__init__(ctx)
        #: The module classes of the file left in place (Haiku classes still), by name.
        self.kept: dict[str, cst.ClassDef] = {}

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef | None:
        info = self.ctx.analysis.module_classes.get(original_node.name.value)
        if info is None or info.node is not original_node:
            return None
        if info.haiku_base not in (None, "haiku.Module"):
            message = f"{info.name} subclasses {info.haiku_base}: hold the Flax layer as a submodule instead"
            return self._keep(original_node, "H2F011", f"{message}; left in place")
        if info.local_base in self.kept:
            message = f"{info.name} subclasses {info.local_base}, which is left in place; class left in place"
            return self._keep(original_node, self.code, message)
        keeper = self.ctx.analysis.classes_built_by_kept_functions.get(info.name)
        if keeper is not None:
            message = f"{info.name} is built by {keeper}, which is left in place (Haiku code); class left in place"
            return self._keep(original_node, self.code, message)
        # A class that cannot be converted is left entirely as it was: no half-Haiku, half-Flax bodies.
        converted = _ClassConversion(self, info, original_node, updated_node).convert()
        if converted is None:
            return self._keep(original_node)
        return converted

    def _keep(self, node: cst.ClassDef, code: str | None = None, message: str = "") -> cst.ClassDef:
        """Leave the class ``node`` as it was (reported as ``code`` when given, else already reported)."""
        self.ctx.withdraw_edits(node)
        if code is not None:
            self.ctx.report(node, code, message)
        self.ctx.reported.add(id(node))  # (the Haiku APIs inside go with the class: no H2F020 for each)
        self.kept[node.name.value] = node
        return node

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> None:
        """Report each place where code the migration turns into Flax builds (or subclasses) a class kept Haiku,
        here or by another file of the run: a Flax module cannot hold a Haiku one, so that code fails until the
        class is migrated by hand."""
        analysis = self.ctx.analysis
        kept = [
            (name, name, "left in place", analysis.rewritten_builders(analysis.reads_of(name, node), updated_node))
            for name, node in self.kept.items()
        ]
        kept += [
            (
                found.described,
                found.exported.name,
                f"kept Haiku in {found.defined_in}",
                analysis.rewritten_builders(found.reads, updated_node),
            )
            for found in analysis.kept_classes()
            if found.exported.kind == KEPT_CLASS_EXPORT
        ]
        for described, name, where, builders in kept:
            for builder in builders:
                self.ctx.report(
                    builder,
                    self.code,
                    f"{described} is {where} but this code becomes Flax: a Flax module cannot build or subclass a "
                    f"Haiku module; migrate {name} by hand",
                )

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call | None:
        """``Block(8, "block_a")``: a Linen module takes its ``name`` by keyword only (so does Haiku's, as well),
        after its other fields, which keep their order: ``Head(2, "head", 0.5)`` is ``Head(2, 0.5, name="head")``
        (each argument slot keeps its comma and spacing; the values move)."""
        named = self.ctx.analysis.positional_name(original_node)
        if named is None:
            return None
        index = original_node.args.index(named)
        args = list(updated_node.args)
        last = max(position for position, arg in enumerate(args) if arg.keyword is None)
        name_value = args[index].value
        for position in range(index, last):
            args[position] = args[position].with_changes(value=args[position + 1].value)
        args[last] = args[last].with_changes(
            value=name_value,
            keyword=cst.Name("name"),
            equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
        )
        return updated_node.with_changes(args=args)


class _ClassConversion:
    """The conversion of one class; kept as an object so each step stays small."""

    def __init__(self, rule: ModuleClassRule, info: ModuleClass, original: cst.ClassDef, updated: cst.ClassDef) -> None:
        self.rule = rule
        self.ctx = rule.ctx
        self.info = info
        self.original = original
        self.updated = updated
        self.fields: list[cst.BaseStatement] = []
        self.field_names: list[str] = []
        self.aliases: dict[str, str] = {}
        #: ``self.size = size or 10``: the field ``size`` holds the argument, ``self._size`` the value.
        self.shadows: dict[str, str] = {}
        self.setup_body: list[cst.BaseStatement] = []
        self.docstring: cst.BaseStatement | None = None

    def fail(self, node: cst.CSTNode, message: str) -> None:
        self.ctx.report(node, self.rule.code, f"{self.info.name}: {message}; class left in place")

    def convert(self) -> cst.ClassDef | None:
        if _has_shadows(self.ctx.analysis.module_classes, self.info.local_base):
            self.fail(self.original, "its base stores derived values under its parameters' names; merge them by hand")
            return None
        self.aliases.update(_constructor_aliases(self.ctx.analysis.module_classes, self.info.local_base))
        updated_init = _method(self.updated, "__init__")
        if updated_init is not None and self.info.init is not None:
            if not self._read_constructor(self.info.init, updated_init):
                return None
        analysis = self.ctx.analysis
        from_init = _methods_called(analysis.subtree(self.info.init.body)) if self.info.init is not None else set()
        for name, method in self.info.methods.items():
            # __init__ becomes setup(), which may set attributes, itself or through the methods it calls
            stored = (
                _self_attribute_stored(analysis.subtree(method.body))
                if name != "__init__" and name not in from_init
                else None
            )
            if stored is not None:
                self.fail(
                    stored,
                    f"{name} stores self.{stored.attr.value} (a Linen module cannot set attributes outside setup()); "
                    "keep it in a local, or build it in __init__",
                )
                return None
        compact = [
            name
            for name, method in self.info.methods.items()
            if name != "__init__" and self.ctx.analysis.builds_inline(method)
        ]
        hoisted: dict[int, cst.BaseExpression] = {}
        if len(compact) > 1:
            # Linen allows one @nn.compact method: the submodules the others build inline move to setup().
            remaining = [name for name in compact if not self._hoist(self.info.methods[name], hoisted)]
            if len(remaining) > 1:
                self.fail(
                    self.info.methods[remaining[0]],
                    f"methods {', '.join(remaining)} build submodules inline from their own arguments, in loops, or "
                    "with dropout/get_parameter/scan, and Linen allows one @nn.compact method: move the submodules "
                    "to __init__ first",
                )
                return None
            compact = remaining
        body: list[cst.BaseStatement] = []
        body.extend(self._class_docstring())
        body.extend(self.fields)
        if self.setup_body and self.info.init is None:
            body.append(self._setup(None))
        dataclass = drop_dataclass(self.ctx, self.original)
        for statement in self.updated.body.body:
            if dataclass is not None and is_name_field(statement):
                continue  # Linen modules have their own ``name``
            if isinstance(statement, cst.FunctionDef) and statement.name.value == "__init__":
                if self.setup_body:
                    body.append(self._setup(statement))
                continue
            if is_docstring(statement) and body and statement is self.updated.body.body[0]:
                continue
            if hoisted and isinstance(statement, cst.FunctionDef):
                statement = fast_transform(statement, _ReplaceByIdentity(hoisted), TOKENS)  # type: ignore[assignment]
            if isinstance(statement, cst.FunctionDef):
                statement = rename_self_attributes(statement, self.shadows)  # type: ignore[assignment]
            if isinstance(statement, cst.FunctionDef) and statement.name.value in compact:
                statement = statement.with_changes(
                    decorators=[cst.Decorator(self.ctx.linen("compact")), *statement.decorators]
                )
            body.append(statement)
        converted = self.updated.with_changes(
            # Linen modules are dataclasses already: Haiku's ``@dataclasses.dataclass`` goes.
            decorators=[
                updated
                for updated, original in zip(self.updated.decorators, self.original.decorators)
                if original is not dataclass
            ],
            bases=[self._base(arg) for arg in self.updated.bases],
            body=self.updated.body.with_changes(body=body),
        )
        return rename_self_attributes(converted, self.aliases)  # type: ignore[return-value]

    def _base(self, arg: cst.Arg) -> cst.Arg:
        original = next(
            (base for base in self.original.bases if base.value is arg.value or base.value.deep_equals(arg.value)), None
        )  # bases are never rewritten by inner rules, so they still match the original
        if original is not None and self.ctx.haiku_name(original.value) == "haiku.Module":
            return arg.with_changes(value=self.ctx.linen("Module"))
        return arg

    def _class_docstring(self) -> list[cst.BaseStatement]:
        """The class's docstring, else ``__init__``'s. When both have one, ``__init__``'s follows the class's, as
        a string of its own (its arguments are the fields now): documentation is not dropped."""
        first = self.updated.body.body[0] if self.updated.body.body else None
        init = [self.docstring] if self.docstring is not None else []
        return [first, *init] if first is not None and is_docstring(first) else init

    def _read_constructor(self, original_init: cst.FunctionDef, updated_init: cst.FunctionDef) -> bool:
        params = updated_init.params
        if type(params.star_arg) is cst.Param or params.star_kwarg:
            self.fail(original_init, "__init__ takes *args/**kwargs, which a dataclass cannot")
            return False
        declared = [param for param in [*params.params[1:], *params.kwonly_params] if param.name.value != "name"]
        names = [param.name.value for param in declared]
        self.field_names = names
        inherited: list[str] = []
        fields = {name: self_attribute(name) for name in names}
        field_comments: dict[str, list[cst.EmptyLine]] = {}
        pending: list[cst.EmptyLine] = []  # comments of statements that disappear, for the next one that stays
        for statement in updated_init.body.body:
            if is_docstring(statement) and statement is updated_init.body.body[0]:
                self.docstring = statement
                continue
            base_init = _base_init_call(statement, self.original.bases)
            if base_init is not None:
                passed = self._inherited_fields(base_init, names)
                if passed is None:
                    self.fail(
                        original_init, "super().__init__ receives arguments other than the base's fields passed through"
                    )
                    return False
                inherited = passed
                pending.extend(_comments(statement))
                continue
            alias = _stored_parameter(statement, names)
            if alias is not None:
                attribute, parameter = alias
                if attribute != parameter:
                    self.aliases[attribute] = parameter
                field_comments.setdefault(parameter, []).extend(_comments(statement))
                continue
            if pending:
                statement = statement.with_changes(leading_lines=[*pending, *statement.leading_lines])
                pending = []
            statement = rename_self_attributes(statement, self.shadows)  # type: ignore[assignment]
            shadowed = _shadowed_parameter(statement, names)
            if shadowed is not None:
                # self.size = size or 10: the field keeps the argument, setup() keeps the derived value.
                self.shadows[shadowed] = _fresh_attribute(f"_{shadowed}", set(names) | set(self.info.methods))
                statement = _retarget(statement, self.shadows[shadowed])
            for node in self.ctx.analysis.nodes_in(statement, cst.AssignTarget):
                if type(node.target) is cst.Name and node.target.value in names:
                    self.fail(original_init, f"__init__ reassigns its parameter {node.target.value!r}")
                    return False
                if is_self_attribute(node.target) and node.target.attr.value in names:  # type: ignore[attr-defined]
                    self.fail(original_init, f"self.{node.target.attr.value} shadows the field of the same name")  # type: ignore[attr-defined]
                    return False
            self.setup_body.append(replace_names(statement, fields))  # type: ignore[arg-type]
        if names[: len(inherited)] != inherited:
            self.fail(
                original_init, "the base's fields must come first, in the base's order, as a dataclass orders them"
            )
            return False
        own = declared[len(inherited) :]
        computed = _computed_by_bases(self.ctx.analysis.module_classes, self.info.local_base)
        clash = next((param.name.value for param in own if param.name.value in computed), None)
        if clash is not None:
            self.fail(
                original_init,
                f"its field {clash!r} is an attribute its base computes in __init__ (setup() in Linen, which cannot "
                "set a field)",
            )
            return False
        if inherited and any(param.default is None for param in own) and self._base_has_defaults():
            self.fail(original_init, "a field without default would follow the base's fields with defaults")
            return False
        if self.info.local_base is not None:
            if self.setup_body:
                self.setup_body.insert(0, cst.SimpleStatementLine([cst.Expr(expr("super().setup()"))]))
        keyword_only = _keyword_only_from(own, params.kwonly_params)
        for index, param in enumerate(own):
            if index == keyword_only:
                self.ctx.require_import("dataclasses")
                self.fields.append(
                    cst.SimpleStatementLine([cst.AnnAssign(cst.Name("_"), cst.Annotation(expr("dataclasses.KW_ONLY")))])
                )
            annotation = param.annotation or cst.Annotation(self._any())
            default = param.default
            if type(default) is cst.List:
                default = cst.Tuple(elements=default.elements)  # a dataclass field cannot default to a list
            elif type(default) in (cst.Dict, cst.Set):  # nor to a dict or a set: each instance gets a new one
                self.ctx.require_import("dataclasses")
                default = expr(f"dataclasses.field(default_factory=lambda: {code_of(default)})")
            comments = field_comments.get(param.name.value, []) + (pending if index == 0 else [])
            self.fields.append(
                cst.SimpleStatementLine(
                    [cst.AnnAssign(target=cst.Name(param.name.value), annotation=annotation, value=default)],
                    leading_lines=comments,
                )
            )
        return True

    def _inherited_fields(self, call_node: cst.Call, names: list[str]) -> list[str] | None:
        """The base fields a ``super().__init__(...)`` passes through unchanged, or None if it does more."""
        base_fields = _constructor_fields(self.ctx.analysis.module_classes, self.info.local_base)
        bound = bind_arguments(call_node, base_fields + ["name"])
        if bound is None:
            return None
        passed = []
        for field, arg in bound.items():
            if field == "name":
                continue
            if not isinstance(arg.value, cst.Name) or arg.value.value != field or field not in names:
                return None
            passed.append(field)
        return sorted(passed, key=base_fields.index)

    def _base_has_defaults(self) -> bool:
        base = self.ctx.analysis.module_classes.get(self.info.local_base or "")
        while base is not None and base.init is None:
            base = self.ctx.analysis.module_classes.get(base.local_base or "")
        return base is not None and any(
            param.default is not None for param in base.init.params.params[1:] if param.name.value != "name"
        )  # type: ignore[union-attr]

    def _hoist(self, method: cst.FunctionDef, hoisted: dict[int, cst.BaseExpression]) -> bool:
        """Move the submodules ``method`` builds inline to setup(); False if one depends on the call."""
        local_names = self.ctx.analysis.local_names(method) - {"self"}
        taken = set(self.field_names) | set(self.info.methods) | _assigned_self_attributes(self.setup_body)
        replacements: dict[int, cst.BaseExpression] = {}
        statements: list[cst.BaseStatement] = []
        for node in walk(method.body):
            if not isinstance(node, cst.Call):
                continue
            layer = self.ctx.analysis.is_haiku_layer_call(node)
            local = self.ctx.analysis.local_module_class(node.func)
            if layer is None and local is None:
                helper = self.ctx.analysis.function_named(node.func) if isinstance(node.func, cst.Name) else None
                if self.ctx.analysis.builds_inline_call(node) or (
                    helper is not None and self.ctx.analysis.builds_inline(helper)
                ):
                    return False  # dropout, get_parameter, or a function that builds layers where it runs
                continue
            if self.ctx.analysis.in_loop(node, method) or any(
                isinstance(name, cst.Name) and name.value in local_names for name in _used_names(node)
            ):
                return False
            attribute = self._attribute_name(node, layer.rsplit(".", 1)[-1] if layer else local.name, taken)  # type: ignore[union-attr]
            taken.add(attribute)
            updated = self.ctx.constructions.get(node)
            if updated is None:
                return False
            replacements[id(updated)] = self_attribute(attribute)
            statements.append(
                cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(self_attribute(attribute))], updated)])
            )
        hoisted.update(replacements)
        self.setup_body.extend(statements)
        return True

    def _attribute_name(self, construction: cst.Call, class_name: str, taken: set[str]) -> str:
        """The Haiku module name: ``name=`` when given, else the snake-cased class name, made unique."""
        given = string_argument(construction, "name")
        base = given if given is not None and given.isidentifier() else haiku_module_name(class_name)
        candidate, index = base, 0
        while candidate in taken:
            index += 1
            candidate = f"{base}_{index}"
        return candidate

    def _setup(self, init: cst.FunctionDef | None) -> cst.FunctionDef:
        body = [without_module_names(statement) for statement in self.setup_body]
        if init is None:
            init = cst.FunctionDef(
                name=cst.Name("setup"),
                params=cst.Parameters(),
                body=cst.IndentedBlock([cst.SimpleStatementLine([cst.Pass()])]),
            )
        return init.with_changes(
            name=cst.Name("setup"),
            params=cst.Parameters(params=[cst.Param(cst.Name("self"))]),
            whitespace_before_params=cst.SimpleWhitespace(
                ""
            ),  # (``__init__``'s parameters may have been on lines of their own)
            body=init.body.with_changes(body=body),
            returns=None,
            leading_lines=[cst.EmptyLine(indent=False)] if self.fields else init.leading_lines,
        )

    def _any(self) -> cst.BaseExpression:
        self.ctx.require_import("typing", "Any")
        return expr("Any")


class _ReplaceByIdentity(TypeDispatch):
    """Replace the very nodes (by identity) that were hoisted into setup() with ``self.<attribute>``."""

    def __init__(self, replacements: dict[int, cst.BaseExpression]) -> None:
        super().__init__()
        self.replacements = replacements

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        return self.replacements.get(id(original_node), updated_node)


def _used_names(node: cst.CSTNode) -> list[cst.Name]:
    """Names read inside ``node`` (not attribute names, keywords or parameters)."""
    skipped: set[int] = set()
    for child in walk(node):
        if isinstance(child, cst.Attribute):
            skipped.add(id(child.attr))
        elif isinstance(child, cst.Arg) and child.keyword is not None:
            skipped.add(id(child.keyword))
    return [child for child in walk(node) if isinstance(child, cst.Name) and id(child) not in skipped]


def _assigned_self_attributes(statements: list[cst.BaseStatement]) -> set[str]:
    names = set()
    for statement in statements:
        for node in walk(statement):
            if isinstance(node, cst.AssignTarget) and is_self_attribute(node.target):
                names.add(node.target.attr.value)  # type: ignore[attr-defined]
    return names


def _method(node: cst.ClassDef, name: str) -> cst.FunctionDef | None:
    for statement in node.body.body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
            return statement
    return None


def _base_init_call(statement: cst.CSTNode, bases: Sequence[cst.Arg]) -> cst.Call | None:
    """``super().__init__(...)``, ``super(C, self).__init__(...)`` or ``hk.Module.__init__(self, ...)`` (with the
    explicit ``self`` dropped; ``bases`` are the class's), as a call whose arguments are the base constructor's."""
    # (plain type tests, not libcst's matchers: this runs on every statement of every constructor)
    expression = _only_small_statement(statement)
    call = expression.value if type(expression) is cst.Expr else None
    if not (type(call) is cst.Call and type(call.func) is cst.Attribute and call.func.attr.value == "__init__"):
        return None
    owner = call.func.value
    if type(owner) is cst.Call and _is_name(owner.func, "super"):
        return call
    if call.args and _is_name(call.args[0].value, "self") and code_of(owner) in {code_of(base.value) for base in bases}:
        return call.with_changes(args=call.args[1:])
    return None


def _only_small_statement(statement: cst.CSTNode) -> cst.BaseSmallStatement | None:
    """The one small statement of a statement line (``x = 1``, not ``x = 1; y = 2``), or None."""
    if type(statement) is cst.SimpleStatementLine and len(statement.body) == 1:
        return statement.body[0]
    return None


def _is_name(node: cst.CSTNode, name: str) -> bool:
    return type(node) is cst.Name and node.value == name


def _self_assignment(statement: cst.CSTNode) -> cst.Assign | None:
    """The statement line ``self.<attribute> = <value>`` (one target), as its Assign, or None."""
    assign = _only_small_statement(statement)
    if type(assign) is not cst.Assign or len(assign.targets) != 1:
        return None
    target = assign.targets[0].target
    return assign if type(target) is cst.Attribute and _is_name(target.value, "self") else None


def _shadowed_parameter(statement: cst.CSTNode, params: list[str]) -> str | None:
    """``self.size = <anything but size>`` where ``size`` is a constructor parameter → ``"size"``."""
    assign = _self_assignment(statement)
    if assign is None:
        return None
    attribute = assign.targets[0].target.attr.value  # type: ignore[attr-defined]
    if attribute in params and not _is_name(assign.value, attribute):
        return attribute
    return None


def _retarget(statement: cst.SimpleStatementLine, attribute: str) -> cst.SimpleStatementLine:
    assign = statement.body[0]
    return statement.with_changes(body=[assign.with_changes(targets=[cst.AssignTarget(self_attribute(attribute))])])  # type: ignore[union-attr]


def _fresh_attribute(candidate: str, taken: set[str]) -> str:
    while candidate in taken:
        candidate = f"_{candidate}"
    return candidate


def _has_shadows(classes: dict[str, ModuleClass], name: str | None) -> bool:
    """Whether a module class (or one of its local bases) stores derived values under its parameters' names."""
    info = classes.get(name or "")
    if info is None:
        return False
    if info.init is not None:
        fields = _constructor_fields(classes, name)
        if any(_shadowed_parameter(statement, fields) for statement in info.init.body.body):
            return True
    return _has_shadows(classes, info.local_base)


def _comments(statement: cst.BaseStatement) -> list[cst.EmptyLine]:
    """The comments on and above a statement that is about to disappear, as comment lines."""
    lines = [line for line in statement.leading_lines if line.comment is not None]
    trailing = getattr(statement, "trailing_whitespace", None)
    if trailing is not None and trailing.comment is not None:
        lines.append(cst.EmptyLine(comment=trailing.comment))
    return lines


def _constructor_fields(classes: dict[str, ModuleClass], name: str | None) -> list[str]:
    """The dataclass fields a module class will have: its constructor parameters (inherited when it has none)."""
    info = classes.get(name or "")
    if info is None:
        return []
    if info.init is None:
        return _constructor_fields(classes, info.local_base)
    params = [*info.init.params.params[1:], *info.init.params.kwonly_params]
    return [param.name.value for param in params if param.name.value != "name"]


def _computed_by_bases(classes: dict[str, ModuleClass], name: str | None) -> set[str]:
    """The attributes module class ``name`` and its local bases compute in ``__init__`` (``self.scale = 2.0``):
    their Linen ``setup()`` assigns them. Stored parameters (``self.x = x``) are fields, not computed."""
    info = classes.get(name or "")
    if info is None:
        return set()
    computed = _computed_by_bases(classes, info.local_base)
    if info.init is not None:
        fields = _constructor_fields(classes, name)
        statements = [statement for statement in info.init.body.body if _stored_parameter(statement, fields) is None]
        computed |= _assigned_self_attributes(statements)
    return computed


def _constructor_aliases(classes: dict[str, ModuleClass], name: str | None) -> dict[str, str]:
    """``self._x = x`` renames of a module class and its local bases."""
    info = classes.get(name or "")
    if info is None:
        return {}
    aliases = _constructor_aliases(classes, info.local_base)
    if info.init is not None:
        fields = _constructor_fields(classes, name)
        for statement in info.init.body.body:
            alias = _stored_parameter(statement, fields)
            if alias is not None and alias[0] != alias[1]:
                aliases[alias[0]] = alias[1]
    return aliases


def _self_attribute_stored(body: list[cst.CSTNode]) -> cst.Attribute | None:
    """The first ``self.x`` that a method assigns (``self.hidden = hk.Linear(8)``), or None; ``body`` is the
    :func:`walk` of its body."""
    for node in body:
        targets: list[cst.BaseExpression] = []
        if type(node) is cst.AssignTarget:
            targets = [node.target]
        elif type(node) in (cst.AugAssign, cst.AnnAssign):
            targets = [node.target]
        for target in targets:
            for part in walk(target):
                if type(part) is cst.Attribute and is_self_attribute(part):
                    return part
    return None


def _methods_called(body: list[cst.CSTNode]) -> set[str]:
    """The names of the methods a function calls on ``self`` (``self._build(...)``); ``body`` is the :func:`walk`
    of its body."""
    return {
        node.func.attr.value
        for node in body
        if type(node) is cst.Call and is_self_attribute(node.func)  # type: ignore[union-attr]
    }


def _keyword_only_from(fields: list[cst.Param], keyword_only: Sequence[cst.Param]) -> int | None:
    """Where the fields must turn keyword-only (``_: dataclasses.KW_ONLY``), or None: when a keyword-only
    parameter without a default follows one with a default (``def __init__(self, width, depth=2, *,
    activation)``), which a dataclass's positional fields cannot do."""
    keyword_ids = {id(param) for param in keyword_only}
    first = next((index for index, field in enumerate(fields) if id(field) in keyword_ids), None)
    if first is None:
        return None
    for index in range(first, len(fields)):
        if fields[index].default is None and any(field.default is not None for field in fields[:index]):
            return first
    return None


def _stored_parameter(statement: cst.CSTNode, params: list[str]) -> tuple[str, str] | None:
    """``self.attr = param`` → (attr, param)."""
    assign = _self_assignment(statement)
    if assign is None or type(assign.value) is not cst.Name or assign.value.value not in params:
        return None
    return assign.targets[0].target.attr.value, assign.value.value  # type: ignore[attr-defined]


def is_name_field(statement: cst.BaseStatement) -> bool:
    """Whether ``statement`` declares the dataclass field ``name`` (``name: str | None = None``)."""
    field = annotated_field(statement)
    return field is not None and field.target.value == "name"  # type: ignore[attr-defined]


def drop_dataclass(ctx: MigrationContext, node: cst.ClassDef) -> cst.Decorator | None:
    """The bare ``@dataclasses.dataclass`` of the original module class ``node``, which both targets drop with
    Haiku's ``name`` field (Linen modules are dataclasses with a name already; NNX ones take the fields in
    ``__init__``): the imports only they used go too. None when the class has none."""
    dataclass = ctx.analysis.dataclass_decorator(node)
    if dataclass is not None:
        ctx.release_import(dataclass.decorator)
        for field in filter(is_name_field, node.body.body):
            for name in (child for child in walk(field) if type(child) is cst.Name):
                ctx.release_import(name)
    return dataclass
