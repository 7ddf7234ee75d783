"""hk.MultiHeadAttention on the Linen target: what is stated, how calls change, and what stays Haiku (the running
program is checked by the fixture ``layers/attention``)."""

from __future__ import annotations

import pytest

from h2f.engine import Options, migrate_source

MODEL = """\
import haiku as hk


def forward(x, mask):
  attention = hk.MultiHeadAttention(num_heads=4, key_size=8, w_init_scale=1.0{extra})
  return attention({call})
"""


def _migrate(extra: str = "", call: str = "x, x, x, mask") -> tuple[str, list[str]]:
    source = MODEL.format(extra=extra, call=call)
    result = migrate_source(source, Options(target="linen"), path="m.py")
    return result.code, [d.format() for d in result.diagnostics]


def test_sizes_flax_would_take_from_the_input_are_stated_and_the_mask_is_passed_by_keyword() -> None:
    code, diagnostics = _migrate()
    assert diagnostics == []
    assert (
        "attention = nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=32, out_features=32, "
        'kernel_init=nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal"))\n' in code
    )
    assert "return attention(x, x, x, mask=mask)\n" in code


def test_keyword_calls_become_positional_and_a_computed_model_size_keeps_haikus_fallback() -> None:
    code, _ = _migrate(", model_size=width, with_bias=False", "query=x, key=x, value=x")
    assert "out_features=width or 32, " in code  # Haiku: ``model_size or num_heads * key_size``
    assert "use_bias=False)" in code
    assert "return attention(x, x, x)\n" in code


@pytest.mark.parametrize(
    ("extra", "call", "why"),
    [
        (", value_size=4", "x, x, x", "with a value_size other than its key_size"),
        (", w_init=hk.initializers.Constant(0.1)", "x, x, x", "needs exactly one of w_init and w_init_scale"),
        ("", "*[x, x, x]", "called without query, key and value or with *args/**kwargs"),
        ("", "x, x", "called without query, key and value or with *args/**kwargs"),
    ],
)
def test_what_flax_cannot_express_stays_haiku_with_its_calls(extra: str, call: str, why: str) -> None:
    code, diagnostics = _migrate(extra, call)
    assert f"attention = hk.MultiHeadAttention(num_heads=4, key_size=8, w_init_scale=1.0{extra})\n" in code
    assert f"return attention({call})\n" in code
    assert f"m.py:5:15: H2F021 haiku.MultiHeadAttention {why}" in diagnostics[0]
