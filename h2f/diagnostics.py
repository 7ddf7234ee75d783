"""Diagnostics: what h2f reports about code it could not (or would not) translate.

Every diagnostic has a stable code ``H2Fnnn``; ``h2f explain CODE`` prints the entry of :data:`CODES`.
A diagnostic reads ``path:line:col: H2Fnnn message`` (columns are 1-based, like compilers and ruff).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Severity = Literal["error", "warning"]


class CodeInfo(NamedTuple):
    """The documentation of one diagnostic code."""

    code: str
    title: str
    explanation: str


class Diagnostic(NamedTuple):
    """One finding in one file."""

    path: str
    line: int
    col: int
    code: str
    message: str
    severity: Severity = "warning"

    def format(self) -> str:
        """Render as ``path:line:col: CODE message``."""
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"


def _code(code: str, title: str, explanation: str) -> CodeInfo:
    return CodeInfo(code, title, " ".join(explanation.split()))


CODES: dict[str, CodeInfo] = {
    info.code: info
    for info in [
        _code(
            "H2F001",
            "file could not be parsed",
            """The file is not valid Python 3 (syntax error, Python 2 code, undecodable bytes). h2f leaves it
            untouched. Fix the syntax or exclude the file.""",
        ),
        _code(
            "H2F002",
            "migration produced code that does not parse",
            """A rule produced output that is not valid Python. h2f refuses to write it and leaves the file
            untouched. This is a bug in h2f: please report it with the input file.""",
        ),
        _code(
            "H2F003",
            "internal error",
            """h2f (a rule, or the analysis of the file) raised an exception on this file. The file is left
            untouched and the other files are still migrated. This is a bug in h2f: please report it with
            the input file.""",
        ),
        _code(
            "H2F004",
            "'# h2f: skip' cannot be honoured",
            """A statement marked '# h2f: skip' would not survive the migration of the code around it as
            written and working: a rule rewrites or moves it (for example it is in a hk.Module constructor that
            becomes dataclass fields); or it uses a name the migration removes or defines differently (a function
            that becomes a module class, a transform that becomes a Linen model); or it binds a transform whose
            init/apply calls elsewhere the migration rewrites; or it defines a Haiku module class that code the
            migration turns into Flax builds (in this file, or in another file of the run, which is then the
            one left untouched). Rather than produce a file that is wrong, h2f leaves the whole file untouched.
            Skip the enclosing statement (put the comment on the def or class line), or the whole file with
            '# h2f: skip-file'.""",
        ),
        _code(
            "H2F005",
            "'# h2f: skip' covers nothing",
            """'# h2f: skip' applies to the statement whose line it ends (for a compound statement such as def,
            class, if or with: its header line or a decorator line, and then to the whole statement). This one is
            elsewhere (on a line of its own, or inside brackets), so it covers nothing and the code is migrated.
            Move it to the end of the statement's line.""",
        ),
        _code(
            "H2F006",
            "notebook code left as written",
            """In a Jupyter notebook, a cell that starts with a cell magic (%%time, %%bash...) or is not Python
            for another reason, or a line magic or shell escape (%timeit ..., !pip ...), is kept exactly as
            written: h2f migrates Python only. This one mentions Haiku, so it may need migrating by hand. Imports
            it may use are kept.""",
        ),
        _code(
            "H2F007",
            "notebook left untouched",
            """The migrated code cells of this notebook could not be put back faithfully: the migration moved
            code across cells or dropped an IPython magic line, or the notebook's JSON layout could not be
            reproduced exactly (so rewriting it would change more than its code). The notebook is not
            rewritten. Migrate the cells concerned by hand, or save the notebook with Jupyter and retry.""",
        ),
        _code(
            "H2F008",
            "file left as it is: rules not selected would rewrite it too",
            """--select or --ignore (or select/ignore in [tool.h2f]) left out rules that this file needs: the
            selected rules would have rewritten part of it, and all the rules would have rewritten more. A
            Haiku program migrated in part does not run (an hk.Module cannot hold a Flax layer; a Linen model
            cannot be built from a Haiku module class), so the file is left exactly as it was, and this is an
            error: the file still needs migrating (a --check run must not pass it). A file the selected rules
            migrate whole (the left-out rules had nothing to do in it) is migrated; one that all the rules
            leave in place is left with their reasons. The message names the rules left out that translate
            a Haiku API the file uses and change what the selection makes of it (a rule that rewrites what no
            API names is not named). Migrate this one with all the rules.""",
        ),
        _code(
            "H2F010",
            "Haiku module class left in place",
            """The class subclasses hk.Module but its constructor does something h2f cannot express as a
            Flax dataclass (for example it computes values from arguments before calling super().__init__,
            or takes *args/**kwargs). Rewrite the constructor by hand: constructor parameters become
            dataclass fields, derived attributes move to setup(). Its subclasses are left in place with it.
            Code that the migration turns into Flax and that builds or subclasses a class left in place (this
            one, a subclass of a Haiku layer, or one another file of the run keeps Haiku) is reported with
            this code where it does: a Flax module cannot hold a Haiku module, so that code fails until the
            class is migrated by hand.""",
        ),
        _code(
            "H2F011",
            "subclass of a concrete Haiku layer",
            """The class subclasses a Haiku layer (such as hk.Linear) rather than hk.Module. Its behaviour
            depends on that layer's internals, which the Flax layer does not share. Rewrite it to hold the
            Flax layer as a submodule.""",
        ),
        _code(
            "H2F012",
            "module name given twice",
            """Haiku numbers a module name already taken in its parent (two layers named "hidden" are hidden and
            hidden_1; one named "proj" built in a loop is proj, proj_1, proj_2); Flax refuses a name twice. A
            literal name repeated in straight-line code gets Haiku's number; a name given in a loop is dropped,
            so Flax names the layers after their class (Dense_0, Dense_1). The model computes the same and its
            parameters convert by structure; code that reads them by that name must change.""",
        ),
        _code(
            "H2F020",
            "Haiku API without a Flax translation",
            """This Haiku API has no translation in h2f yet (or none that computes the same thing). It is
            left in place; the migrated file still imports haiku for it. Translate it by hand.""",
        ),
        _code(
            "H2F021",
            "argument cannot be translated",
            """An argument of a Haiku layer has no faithful Flax counterpart (for example a custom
            data_format or a padding function). The call is left in place.""",
        ),
        _code(
            "H2F022",
            "argument passed on unseen",
            """An argument whose value h2f cannot see is passed to the Flax layer as written, and Flax reads some
            of its possible values differently: a convolution's padding held in a variable is read alike when it
            is "SAME" or "VALID", but Flax reads a (low, high) pair as one padding per spatial dimension and takes
            no hk.pad function. Check the value, or write the padding literally so h2f can translate it.""",
        ),
        _code(
            "H2F023",
            "parameters in the input's dtype",
            """Haiku's layers create their parameters in the dtype of their input and compute in it: a model fed
            bfloat16 or float16 has half-precision parameters and outputs. Flax's layers create float32 parameters
            (param_dtype) and compute in the promoted dtype, float32. The file uses half precision: pass
            dtype= and param_dtype= to the Flax layers that take it (and convert checkpoints to match).""",
        ),
        _code(
            "H2F030",
            "random key use left in place",
            """hk.next_rng_key()/hk.maybe_next_rng_key() is used where h2f cannot give it a Flax rng stream
            (outside a module method, or passed somewhere h2f cannot follow).""",
        ),
        _code(
            "H2F040",
            "transform or call site left in place",
            """A hk.transform result is used in a way h2f cannot rewrite (passed to another function,
            stored in a container, its init/apply called with arguments h2f cannot map), or its parameters
            are read by Haiku's module paths or parameter names (params["linear"]["w"], path[-1].key == "b"),
            which Flax spells differently. The Linen model is created, but this use must be migrated by
            hand.""",
        ),
        _code(
            "H2F041",
            "a file outside the run imports what the run migrates",
            """A file of the project that is not part of this run (not among the paths given, or excluded by
            [tool.h2f]) imports, at module level, a transform, initializer or module class that a file of the
            run defines and this run migrates. Migrated alone, the exporter becomes Flax while the importer
            keeps calling it as Haiku's (init/apply with Haiku's signature, a Haiku module built from a Flax
            class): the importer breaks. Migrate the two files in one run (h2f migrate models.py train.py, or
            the whole tree), so that the importer's call sites are rewritten with it. (Module-level imports
            are seen: 'from models import model', 'from models import *', and 'import models' read as
            'models.model'.) A file of the run marked '# h2f: skip-file' is left as it is, so it is warned
            the same way: migrate it by hand, or drop the mark.""",
        ),
        _code(
            "H2F042",
            "a file of the run imports a Haiku class or initializer from outside the run",
            """A file this run migrates imports, at module level, a hk.Module subclass or a Haiku initializer
            from a file of the project that is not part of the run (not among the paths given, or excluded by
            [tool.h2f]). The importer's code becomes Flax and uses what it imports as Flax's (a Linen module
            building the class, a Flax layer given the initializer), while the other file keeps them Haiku:
            the importer breaks. Migrate the two files in one run. (Module-level imports naming the defining
            module are seen: 'from blocks import Block', 'from blocks import *', and 'import blocks' read as
            'blocks.Block'. An import the file never uses as a module or an initializer, unused or only named in
            annotations and isinstance tests, is not reported.)""",
        ),
        _code(
            "H2F050",
            "BatchNorm moving averages differ",
            """Haiku's BatchNorm keeps zero-debiased exponential moving averages (they start at the first
            batch's statistics); Flax's BatchNorm keeps biased averages that start at mean 0 and variance 1.
            Training-mode outputs and trained parameters are identical, but eval-mode outputs differ until
            the averages have warmed up (roughly 1/(1-momentum) steps). Checkpoints converted from Haiku
            carry the debiased averages across and match exactly.""",
        ),
        _code(
            "H2F060",
            "scan or layer_stack left in place",
            """hk.scan / layer_stack is used in a form h2f cannot map onto nn.scan (for example a scanned
            function that is not a module call, or per-layer inputs that h2f cannot follow).""",
        ),
        _code(
            "H2F061",
            "remat or vmap left in place",
            """hk.remat / hk.vmap is used in a form h2f cannot map onto Linen's lifted nn.remat / nn.vmap: it is
            not called where it is written (a decorator, a name bound to it), or the function it transforms
            reaches the module other than through the lifted function's argument (a def that reads self or draws
            rng keys, a lambda that calls a submodule built outside it), which would hand the JAX transform the
            outer module's values; an hk.vmap without split_rng, with a split_rng h2f cannot read, or over a
            function using state (Haiku broadcasts it, Linen's vmap needs its axes stated), or over a function building a
            module Haiku names like one built after it (hk.vmap forgets the names it gives, so the two share
            weights; Flax's would not). Write the call as
            hk.remat(f)(x) with f building what it calls, or lift it by hand:
            nn.remat(lambda module, x: module.block(x))(self, x).""",
        ),
        _code(
            "H2F070",
            "parameter or state access left in place",
            """hk.get_parameter / hk.get_state / hk.set_state is used where h2f cannot make it a Flax
            variable (outside a module or transformed function, or with a name that is not a constant).""",
        ),
        _code(
            "H2F080",
            "initializer differs",
            """A Haiku initializer has no exact Flax counterpart. The parameters it creates are
            initialized differently, so training from scratch starts from a different distribution (a
            converted checkpoint is unaffected).""",
        ),
        _code(
            "H2F090",
            "Haiku still used after migration",
            """Some Haiku code remains in the file (see the other diagnostics), so the haiku import is
            kept.""",
        ),
        _code(
            "H2F100",
            "not supported by the nnx target yet",
            """The NNX target translates a file only when it can translate all of its Haiku faithfully: an
            NNX module is built eagerly, so a half-migrated file would not run. The file is left exactly as
            it was; each diagnostic names one thing that stopped it (an API the NNX target does not handle
            yet, a layer input width h2f cannot follow through the code, a transform used in a way it cannot
            follow). Migrate those parts by hand, or use --to linen.""",
        ),
        _code(
            "H2F101",
            "apply's rng key not passed on (nnx)",
            """Haiku's apply took an rng key for dropout; an NNX model draws its dropout masks from the
            nnx.Rngs it was built with (seeded where Haiku called init). The masks differ from Haiku's (the
            distribution is the same, and the stream advances with every call); deterministic calls are
            unaffected. Call nnx.reseed(model, default=key) before the call to control them.""",
        ),
        _code(
            "H2F102",
            "model built through nnx.bridge (nnx)",
            """The NNX target could not build this model's modules eagerly from the source (a layer's input
            width is lost in a reshape or an unknown function, and NNX needs it at construction), so the file's
            modules are migrated to Linen, as --to linen would, and the model is wrapped for NNX where Haiku
            called init: nnx.bridge.ToNNX(Model(...), rngs=nnx.Rngs(key)).lazy_init(x). The program computes
            what Haiku computed; the model's state is the Linen variables tree (Conv_0/kernel) under the
            wrapper. Rewrite the modules as eager nnx.Module classes by hand to drop the bridge.""",
        ),
    ]
}


#: Codes that mean "this Haiku code was left in place": a file with one of them still needs Haiku.
LEFT_IN_PLACE = frozenset(
    {"H2F010", "H2F011", "H2F020", "H2F021", "H2F030", "H2F040", "H2F060", "H2F061", "H2F070", "H2F100"}
)


def explain(code: str) -> CodeInfo:
    """Return the documentation of ``code`` (case-insensitive, ``12`` means ``H2F012``)."""
    normalized = code.strip().upper()
    if normalized.isdigit():
        normalized = f"H2F{int(normalized):03d}"
    try:
        return CODES[normalized]
    except KeyError:
        raise KeyError(f"unknown diagnostic code {code!r}; known codes: {', '.join(CODES)}") from None
