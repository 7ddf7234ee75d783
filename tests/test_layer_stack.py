"""hk.layer_stack: code in the stacked function that reaches its module (rng keys, hk.get_parameter, state)
reaches the stacked module once migrated, so every layer draws its own keys and owns its own variables."""

from __future__ import annotations

import runpy
from pathlib import Path

from h2f.engine import Options, migrate_source

PER_LAYER_KEYS = """
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
    @hk.layer_stack(2)
    def stack(h):
        shift = hk.get_parameter("shift", [], init=jnp.zeros)
        return h + shift + jax.random.bernoulli(hk.next_rng_key(), 0.5, h.shape).astype(h.dtype)

    return stack(x)


model = hk.transform(forward)
x = jnp.zeros((256,))
params = model.init(jax.random.PRNGKey(0), x)
"""


def test_each_stacked_layer_draws_its_own_key_as_in_haiku(tmp_path: Path) -> None:
    result = migrate_source(PER_LAYER_KEYS, Options(), "prog.py")
    assert not result.diagnostics, result.diagnostics
    assert '_layer.make_rng("sample")' in result.code
    assert '_layer.param("shift"' in result.code
    (tmp_path / "haiku_prog.py").write_text(PER_LAYER_KEYS)
    (tmp_path / "migrated.py").write_text(result.code)
    haiku = runpy.run_path(str(tmp_path / "haiku_prog.py"))
    flax = runpy.run_path(str(tmp_path / "migrated.py"))
    import jax

    key = jax.random.PRNGKey(3)
    haiku_out = haiku["model"].apply(haiku["params"], key, haiku["x"])
    flax_out = flax["model"].apply({"params": flax["params"]}, flax["x"], rngs={"sample": key})
    assert flax["params"]["ScanStack_0"]["shift"].shape == (2,)  # one parameter per layer, stacked
    for out in (haiku_out, flax_out):
        # two layers adding a 0/1 draw each: a 1 somewhere shows the layers drew different keys
        assert set(out.tolist()) == {0.0, 1.0, 2.0}
