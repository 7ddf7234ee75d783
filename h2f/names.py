"""Haiku's names and Flax's, in one place: API renames, argument renames, initializers, naming schemes.

Everything here is data. Rules read these tables; a rename that is only a rename belongs here, not in a
rule.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping

#: Spellings that mean the same Haiku API.
HAIKU_SYNONYMS: Mapping[str, str] = {
    "haiku.experimental.layer_stack": "haiku.layer_stack",
    "haiku.experimental.LayerStackTransparencyMapping": "haiku.LayerStackTransparencyMapping",
    "haiku.experimental.multi_transform": "haiku.multi_transform",
}

#: Qualified names that are Haiku namespaces rather than APIs.
HAIKU_NAMESPACES = frozenset(
    {
        "haiku",
        "haiku.initializers",
        "haiku.nets",
        "haiku.experimental",
        "haiku.pad",
        "haiku.data_structures",
        "haiku.mixed_precision",
        "haiku.testing",
        "haiku.config",
        "haiku.typing",
    }
)


#: ``hk.data_structures`` functions that hold for any pytree → the expression they compute (Haiku's own code).
TREE_SIZES: Mapping[str, str] = {
    "haiku.data_structures.tree_size": "sum(x.size for x in jax.tree_util.tree_leaves({tree}))",
    "haiku.data_structures.tree_bytes": "sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves({tree}))",
}

#: What ``hk.Module`` gives its subclasses that Flax's modules do not have.
HAIKU_MODULE_MEMBERS = frozenset({"module_name", "params_dict", "state_dict"})

#: Half-precision dtypes, by the names code spells them with (``jnp.bfloat16``, ``"float16"``).
HALF_PRECISION_DTYPES = frozenset({"bfloat16", "float16"})

#: Haiku's parameter names that Flax's layers spell differently → Flax's (``scale`` is the same in both).
HAIKU_PARAMETER_NAMES: Mapping[str, str] = {"w": "kernel", "b": "bias", "offset": "bias", "embeddings": "embedding"}

_HAIKU_LAYOUT_CAVEAT = (
    "it sees parameters as Haiku names them ({module: {name: value}}, w/b/offset/scale); migrated parameters "
    "nest by submodule with Flax's names (Dense_0 {kernel, bias}): check what it selects"
)
#: What a Haiku API left in place (H2F020) does differently on migrated parameters, added to its report.
LEFTOVER_CAVEATS: Mapping[str, str] = {
    f"haiku.data_structures.{name}": _HAIKU_LAYOUT_CAVEAT
    for name in ("filter", "partition", "partition_n", "map", "traverse", "merge", "is_subset")
}


def normalize_haiku_name(name: str) -> str:
    """Map every spelling of a Haiku API onto one name (``haiku.experimental.layer_stack`` → ``haiku.layer_stack``)."""
    return HAIKU_SYNONYMS.get(name, name)


@dataclasses.dataclass(frozen=True)
class LayerRename:
    """How one Haiku layer constructor becomes a Flax Linen one.

    ``haiku_params`` lists the Haiku constructor's parameters in positional order, so positional arguments
    can be named. ``args`` renames Haiku keywords to Flax keywords; a Haiku keyword that is absent from
    ``args`` and from ``unsupported`` is an error in the table (tests check the table against the installed
    Haiku). ``positional`` is how many leading Flax parameters may be passed positionally. ``haiku_defaults``
    are Flax keywords (with the source text of Haiku's value) that the migration states explicitly when the
    Haiku call relied on a Haiku default that Flax does not share. ``unsupported`` maps Haiku keywords that
    have no faithful Flax counterpart to the source text of the only value that is fine (None: never fine).
    """

    flax: str
    haiku_params: tuple[str, ...]
    args: Mapping[str, str]
    positional: int = 1
    haiku_defaults: Mapping[str, str] = dataclasses.field(default_factory=dict)
    unsupported: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    conv_rank: int | None = None
    #: A depthwise convolution: Flax's ``Conv`` with ``feature_group_count`` the input's channels, and the Haiku
    #: ``channel_multiplier`` (the argument renamed ``features``) times those as its ``features``.
    depthwise: bool = False


#: Flax keyword values that are the Flax default anyway: the migration leaves them out.
FLAX_DEFAULTS: Mapping[str, Mapping[str, str]] = {
    "Dense": {"use_bias": "True"},
    "Conv": {
        "strides": "1",
        "kernel_dilation": "1",
        "padding": "'SAME'",
        "use_bias": "True",
        "feature_group_count": "1",
    },
    "ConvTranspose": {"strides": "1", "padding": "'SAME'", "use_bias": "True"},
    "LayerNorm": {
        "reduction_axes": "-1",
        "feature_axes": "-1",
        "use_scale": "True",
        "use_bias": "True",
        "use_fast_variance": "True",
    },
    "RMSNorm": {"reduction_axes": "-1", "feature_axes": "-1", "use_scale": "True"},
    "GroupNorm": {"use_scale": "True", "use_bias": "True", "use_fast_variance": "True"},
    "BatchNorm": {"use_scale": "True", "use_bias": "True", "epsilon": "1e-5"},
}

_CONV_PARAMS = (
    "output_channels",
    "kernel_shape",
    "stride",
    "rate",
    "padding",
    "with_bias",
    "w_init",
    "b_init",
    "data_format",
    "mask",
    "feature_group_count",
    "name",
)
_CONV_ARGS = {
    "output_channels": "features",
    "kernel_shape": "kernel_size",
    "stride": "strides",
    "rate": "kernel_dilation",
    "padding": "padding",
    "with_bias": "use_bias",
    "w_init": "kernel_init",
    "b_init": "bias_init",
    "feature_group_count": "feature_group_count",
    "mask": "mask",
    "name": "name",
    "channel_multiplier": "features",  # a depthwise convolution's: see LayerRename.depthwise
}


_CONV_TRANSPOSE_PARAMS = (
    "output_channels",
    "kernel_shape",
    "stride",
    "output_shape",
    "padding",
    "with_bias",
    "w_init",
    "b_init",
    "data_format",
    "mask",
    "name",
)
_DEPTHWISE_PARAMS = (
    "channel_multiplier",
    "kernel_shape",
    "stride",
    "rate",
    "padding",
    "with_bias",
    "w_init",
    "b_init",
    "data_format",
    "name",
)


def _convolution(
    flax: str,
    params: tuple[str, ...],
    rank: int,
    data_format: str,
    unsupported: Mapping[str, str | None] = {},  # noqa: B006 (read only)
    depthwise: bool = False,
) -> LayerRename:
    """A Haiku convolution over ``rank`` spatial dimensions, its parameters ``params`` renamed by
    :data:`_CONV_ARGS`, on channels-last data only (``data_format``), ``unsupported`` besides."""
    unsupported = {"data_format": repr(data_format), **unsupported}
    args = {param: _CONV_ARGS[param] for param in params if param not in unsupported}
    return LayerRename(flax, params, args, 2, unsupported=unsupported, conv_rank=rank, depthwise=depthwise)


def _conv(rank: int, data_format: str) -> LayerRename:
    return _convolution("Conv", _CONV_PARAMS, rank, data_format)


def _conv_transpose(rank: int, data_format: str) -> LayerRename:
    # Haiku's kernel is (..., out, in) where Flax's is (..., in, out): the computation is the same (neither flips
    # the kernel), the parameters are converted by swapping the last two axes (h2f.verify.convert). A mask would
    # need the swap in the source, ``output_shape`` has no Flax counterpart.
    return _convolution(
        "ConvTranspose", _CONV_TRANSPOSE_PARAMS, rank, data_format, {"output_shape": None, "mask": None}
    )


def _depthwise(rank: int, data_format: str) -> LayerRename:
    # Haiku's kernel is (..., 1, multiplier * channels), as Flax's grouped Conv's is: the same lax convolution.
    return _convolution("Conv", _DEPTHWISE_PARAMS, rank, data_format, depthwise=True)


LAYERS: Mapping[str, LayerRename] = {
    "haiku.Linear": LayerRename(
        "Dense",
        ("output_size", "with_bias", "w_init", "b_init", "name"),
        {
            "output_size": "features",
            "with_bias": "use_bias",
            "w_init": "kernel_init",
            "b_init": "bias_init",
            "name": "name",
        },
    ),
    "haiku.Conv1D": _conv(1, "NWC"),
    "haiku.Conv2D": _conv(2, "NHWC"),
    "haiku.Conv3D": _conv(3, "NDHWC"),
    "haiku.DepthwiseConv1D": _depthwise(1, "NWC"),
    "haiku.DepthwiseConv2D": _depthwise(2, "NHWC"),
    "haiku.DepthwiseConv3D": _depthwise(3, "NDHWC"),
    "haiku.Conv1DTranspose": _conv_transpose(1, "NWC"),
    "haiku.Conv2DTranspose": _conv_transpose(2, "NHWC"),
    "haiku.Conv3DTranspose": _conv_transpose(3, "NDHWC"),
    "haiku.LayerNorm": LayerRename(
        "LayerNorm",
        ("axis", "create_scale", "create_offset", "eps", "scale_init", "offset_init", "use_fast_variance", "name"),
        {
            "axis": "reduction_axes",
            "param_axis": "feature_axes",
            "create_scale": "use_scale",
            "create_offset": "use_bias",
            "eps": "epsilon",
            "scale_init": "scale_init",
            "offset_init": "bias_init",
            "use_fast_variance": "use_fast_variance",
            "name": "name",
        },
        positional=0,
        haiku_defaults={"epsilon": "1e-5", "use_fast_variance": "False"},
    ),
    "haiku.RMSNorm": LayerRename(
        "RMSNorm",
        ("axis", "eps", "scale_init", "name", "create_scale"),
        {
            "axis": "reduction_axes",
            "param_axis": "feature_axes",
            "eps": "epsilon",
            "scale_init": "scale_init",
            "create_scale": "use_scale",
            "name": "name",
        },
        positional=0,
        haiku_defaults={"epsilon": "1e-5"},
    ),
    "haiku.GroupNorm": LayerRename(
        "GroupNorm",
        ("groups", "axis", "create_scale", "create_offset", "eps", "scale_init", "offset_init", "data_format", "name"),
        {
            "groups": "num_groups",
            "create_scale": "use_scale",
            "create_offset": "use_bias",
            "eps": "epsilon",
            "scale_init": "scale_init",
            "offset_init": "bias_init",
            "name": "name",
        },
        positional=0,
        haiku_defaults={"epsilon": "1e-5", "use_fast_variance": "False"},
        unsupported={"axis": None, "data_format": "'channels_last'"},
    ),
    "haiku.Embed": LayerRename(
        "Embed",
        ("vocab_size", "embed_dim", "embedding_matrix", "w_init", "lookup_style", "name", "precision"),
        {
            "vocab_size": "num_embeddings",
            "embed_dim": "features",
            "w_init": "embedding_init",
            "name": "name",
            "embedding_matrix": "embedding_init",  # the layers rule translates it: rules/layers.py _embed_matrix
        },
        positional=2,
        haiku_defaults={"embedding_init": "truncated_normal(stddev=1.0)"},
        unsupported={"lookup_style": "'ARRAY_INDEX'", "precision": None},
    ),
    "haiku.Sequential": LayerRename("Sequential", ("layers", "name"), {"layers": "layers", "name": "name"}),
    "haiku.BatchNorm": LayerRename(
        "BatchNorm",
        (
            "create_scale",
            "create_offset",
            "decay_rate",
            "eps",
            "scale_init",
            "offset_init",
            "axis",
            "cross_replica_axis",
            "cross_replica_axis_index_groups",
            "data_format",
            "name",
        ),
        {
            "create_scale": "use_scale",
            "create_offset": "use_bias",
            "decay_rate": "momentum",
            "eps": "epsilon",
            "scale_init": "scale_init",
            "offset_init": "bias_init",
            "cross_replica_axis": "axis_name",
            "cross_replica_axis_index_groups": "axis_index_groups",
            "name": "name",
        },
        positional=0,
        unsupported={"axis": None, "data_format": "'channels_last'"},
    ),
}

#: ``hk.MultiHeadAttention`` arguments that carry over to ``nn.MultiHeadDotProductAttention`` as they are, renamed
#: (the sizes and initializers are translated by :mod:`h2f.rules.attention`).
MULTI_HEAD_ATTENTION_ARGS: Mapping[str, str] = {"with_bias": "use_bias", "name": "name"}

#: ``hk.Embed`` attributes → ``nn.Embed``'s (and ``nnx.Embed``'s).
EMBED_ATTRIBUTES: Mapping[str, str] = {
    "embeddings": "embedding",
    "vocab_size": "num_embeddings",
    "embed_dim": "features",
}

#: Haiku constructor arguments that take an initializer.
INITIALIZER_ARGS = frozenset({"w_init", "b_init", "scale_init", "offset_init"})

#: Flax layers' default initializers (``flax.linen.initializers.<value>``), by argument: what a Haiku layer given
#: an initializer that is None at run time uses instead (unless the layer's ``haiku_defaults`` states Haiku's).
FLAX_INITIALIZER_DEFAULTS: Mapping[str, str] = {
    "kernel_init": "lecun_normal()",
    "bias_init": "zeros_init()",
    "scale_init": "ones_init()",
    "embedding_init": "variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)",
}

#: Haiku module classes h2f knows of (translated or not): constructing one inline needs ``@nn.compact``.
#: (``hk.MaxPool``/``hk.AvgPool`` are left out: they become the functions ``nn.max_pool``/``nn.avg_pool``;
#: ``hk.Flatten``/``hk.Reshape`` too: they become reshapes.)
HAIKU_MODULE_CLASSES = frozenset(LAYERS) | frozenset(
    f"haiku.{name}"
    for name in (
        "Module",
        "Sequential",
        "LSTM",
        "GRU",
        "VanillaRNN",
        "DeepRNN",
        "MultiHeadAttention",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "DepthwiseConv3D",
        "SeparableDepthwiseConv2D",
        "ConvND",
        "ConvNDTranspose",
        "InstanceNorm",
        "SpectralNorm",
        "ExponentialMovingAverage",
        "EMAParamsTree",
        "Bias",
        "nets.MLP",
        "nets.ResNet",
        "nets.ResNet18",
        "nets.ResNet34",
        "nets.ResNet50",
        "nets.ResNet101",
        "nets.ResNet152",
        "nets.ResNet200",
        "nets.MobileNetV1",
        "nets.VectorQuantizer",
        "nets.VectorQuantizerEMA",
    )
)
HAIKU_LAYERS = HAIKU_MODULE_CLASSES - {"haiku.Module"}


@dataclasses.dataclass(frozen=True)
class InitializerRename:
    """How a ``hk.initializers`` class becomes a ``nn.initializers`` function.

    ``haiku_params`` are the Haiku constructor's parameters in order with the source of their defaults;
    ``args`` maps them onto the Flax function's keywords; ``exact_only`` holds Haiku parameters whose
    non-default values Flax cannot express (the initializer is then reported).
    """

    flax: str
    haiku_params: tuple[tuple[str, str], ...]
    args: Mapping[str, str]
    always: tuple[str, ...] = ()
    exact_only: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: A Haiku parameter's value as the Flax argument, ``{}`` standing for it (``UniformScaling``'s scale is the
    #: square root of ``variance_scaling``'s), and the Flax argument for Haiku's default.
    formulas: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    #: Arguments Flax needs after those, fixed by the Haiku class (``"fan_in", "uniform"``).
    fixed: tuple[str, ...] = ()
    #: What the Haiku initializer computes, as a Flax initializer (``{param}`` stands for each parameter's value):
    #: written when a parameter of ``exact_only`` has another value.
    exact_form: str | None = None


INITIALIZERS: Mapping[str, InitializerRename] = {
    "haiku.initializers.Constant": InitializerRename(
        "constant", (("constant", ""),), {"constant": "value"}, ("constant",)
    ),
    "haiku.initializers.RandomNormal": InitializerRename(
        "normal",
        (("stddev", "1.0"), ("mean", "0.0")),
        {"stddev": "stddev"},
        ("stddev",),
        {"mean": "0.0"},
        exact_form="lambda key, shape, dtype=jnp.float32: {mean} + {stddev} * jax.random.normal(key, shape, dtype)",
    ),
    "haiku.initializers.TruncatedNormal": InitializerRename(
        "truncated_normal",
        (("stddev", "1.0"), ("mean", "0.0"), ("lower", "-2.0"), ("upper", "2.0")),
        {"stddev": "stddev", "lower": "lower", "upper": "upper"},
        ("stddev",),
        {"mean": "0.0"},
        exact_form="lambda key, shape, dtype=jnp.float32: "
        "{stddev} * jax.random.truncated_normal(key, {lower}, {upper}, shape, dtype) + {mean}",
    ),
    "haiku.initializers.RandomUniform": InitializerRename(
        "uniform",
        (("minval", "0.0"), ("maxval", "1.0")),
        {"maxval": "scale"},
        ("maxval",),
        {"minval": "0.0"},
        exact_form="lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, {minval}, {maxval})",
    ),
    "haiku.initializers.VarianceScaling": InitializerRename(
        "variance_scaling",
        (("scale", "1.0"), ("mode", '"fan_in"'), ("distribution", '"truncated_normal"'), ("fan_in_axes", "None")),
        {"scale": "scale", "mode": "mode", "distribution": "distribution"},
        ("scale", "mode", "distribution"),
        {"fan_in_axes": "None"},
    ),
    "haiku.initializers.Orthogonal": InitializerRename(
        "orthogonal", (("scale", "1.0"), ("axis", "-1")), {"scale": "scale", "axis": "column_axis"}
    ),
    # U(-scale * sqrt(3 / fan_in), +...): the uniform variance_scaling of variance scale**2.
    "haiku.initializers.UniformScaling": InitializerRename(
        "variance_scaling",
        (("scale", "1.0"),),
        {"scale": "scale"},
        ("scale",),
        formulas={"scale": ("{} ** 2", "1.0")},
        fixed=('"fan_in"', '"uniform"'),
    ),
}

#: ``hk.pad`` functions: a spatial dimension's (low, high) padding for the effective kernel size k (the kernel
#: size dilated: ``(kernel - 1) * rate + 1``), by which a convolution given the function pads.
PAD_FUNCTIONS: Mapping[str, Callable[[int], tuple[int, int]]] = {
    "haiku.pad.valid": lambda k: (0, 0),
    "haiku.pad.same": lambda k: ((k - 1) // 2, k // 2),
    "haiku.pad.full": lambda k: (k - 1, k - 1),
    "haiku.pad.causal": lambda k: (k - 1, 0),
    "haiku.pad.reverse_causal": lambda k: (0, k - 1),
}

#: ``jnp`` constructors that Haiku code passes as initializers, and their Flax initializer.
ARRAY_INITIALIZERS: Mapping[str, str] = {
    "jax.numpy.zeros": "zeros",
    "jax.numpy.ones": "ones",
    "numpy.zeros": "zeros",
    "numpy.ones": "ones",
}

#: Type annotations and their Flax/JAX counterparts: Haiku name → (module to import, expression).
ANNOTATIONS: Mapping[str, tuple[str, str]] = {
    "haiku.Params": ("flax.typing", "VariableDict"),
    "haiku.State": ("flax.typing", "VariableDict"),
    "haiku.MutableParams": ("flax.typing", "VariableDict"),
    "haiku.MutableState": ("flax.typing", "VariableDict"),
    "haiku.Transformed": ("flax.linen", "Module"),
    "haiku.TransformedWithState": ("flax.linen", "Module"),
    "haiku.MultiTransformed": ("flax.linen", "Module"),
    "haiku.MultiTransformedWithState": ("flax.linen", "Module"),
    "haiku.initializers.Initializer": ("flax.linen.initializers", "Initializer"),
}
#: Haiku's types of params and state: on the NNX target they hold what ``nnx.split`` gives, ``nnx.State``.
STATE_ANNOTATIONS = frozenset({"haiku.Params", "haiku.State", "haiku.MutableParams", "haiku.MutableState"})
#: Haiku's types of a transform: on the NNX target only a factory's return type (it returns the model's constructor).
TRANSFORM_ANNOTATIONS = frozenset(
    {"haiku.Transformed", "haiku.TransformedWithState", "haiku.MultiTransformed", "haiku.MultiTransformedWithState"}
)

#: Flax collection that holds ``hk.get_state`` variables (one bucket, like Haiku's ``state``).
STATE_COLLECTION = "state"
#: Flax collection of BatchNorm statistics.
BATCH_STATS_COLLECTION = "batch_stats"
#: Flax rng stream for dropout, and for every other use of Haiku's rng key.
#: Haiku transforms that run the function they are given once, where they are called (``hk.remat(f)(x)``), and
#: that Linen lifts (:mod:`h2f.lifting`).
LIFTED_TRANSFORMS = frozenset({"haiku.remat", "haiku.vmap"})
DROPOUT_STREAM = "dropout"
SAMPLE_STREAM = "sample"

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def haiku_module_name(class_name: str) -> str:
    """The name Haiku gives an unnamed module of class ``class_name`` (``BatchNorm`` → ``batch_norm``)."""
    return _CAMEL_BOUNDARY.sub("_", class_name).lower()


def class_name_for(function_name: str) -> str:
    """The Linen class name for a Haiku function that becomes a module (``forward_fn`` → ``ForwardFn``)."""
    parts = [part for part in function_name.split("_") if part]
    return "".join(part[:1].upper() + part[1:] for part in parts) or "Model"


@dataclasses.dataclass(frozen=True)
class NnxLayer:
    """How a Haiku layer, once :data:`LAYERS` made it a Linen call, becomes a Flax NNX layer.

    ``width_argument`` is the NNX parameter for the input width (passed first, positionally; None when the
    layer needs none); ``renames`` maps Linen keywords onto NNX's; ``only`` maps Linen keywords the NNX layer
    cannot follow to the one value it can (the source text). Every NNX layer also takes ``rngs``.
    """

    nnx: str
    width_argument: str | None
    renames: Mapping[str, str] = dataclasses.field(default_factory=dict)
    only: Mapping[str, str] = dataclasses.field(default_factory=dict)


_NNX_CONV = NnxLayer("Conv", "in_features", {"features": "out_features"})
_NNX_CONV_TRANSPOSE = NnxLayer("ConvTranspose", "in_features", {"features": "out_features"})

#: Haiku layer → its NNX layer (the defaults Haiku and Flax do not share are stated by :data:`LAYERS`;
#: NNX's defaults for these layers are Linen's).
NNX_LAYERS: Mapping[str, NnxLayer] = {
    "haiku.Linear": NnxLayer("Linear", "in_features", {"features": "out_features"}),
    "haiku.Conv1D": _NNX_CONV,
    "haiku.Conv2D": _NNX_CONV,
    "haiku.Conv3D": _NNX_CONV,
    "haiku.Conv1DTranspose": _NNX_CONV_TRANSPOSE,
    "haiku.Conv2DTranspose": _NNX_CONV_TRANSPOSE,
    "haiku.Conv3DTranspose": _NNX_CONV_TRANSPOSE,
    # Their scale and offset hold one width: parameters over several axes (``param_axis=(1, 2)``) they cannot.
    "haiku.LayerNorm": NnxLayer("LayerNorm", "num_features", only={"feature_axes": "-1"}),
    "haiku.RMSNorm": NnxLayer("RMSNorm", "num_features", only={"feature_axes": "-1"}),
    "haiku.GroupNorm": NnxLayer("GroupNorm", "num_features"),
    "haiku.Embed": NnxLayer("Embed", None),
    "haiku.BatchNorm": NnxLayer("BatchNorm", "num_features"),
    # Stacks: an nnx.Sequential of NNX layers (each layer's width follows from the one before).
    "haiku.Sequential": NnxLayer("Sequential", "in_features"),
    "haiku.nets.MLP": NnxLayer("Sequential", "in_features"),
}
