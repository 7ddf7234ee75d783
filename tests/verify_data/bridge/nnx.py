"""A conv encoder whose dense layer's input width is lost in a flatten: the NNX target bridges its Linen migration."""
import jax
import jax.numpy as jnp
import flax.linen as nn
from flax import nnx


class ConvEncoder(nn.Module):
  @nn.compact
  def __call__(self, images):
    x = nn.Conv(features=4, kernel_size=(3, 3), strides=2)(images)
    x = jax.nn.relu(x)
    x = x.reshape(x.shape[0], -1)
    x = nn.LayerNorm(epsilon=1e-5, use_fast_variance=False)(x)
    return nn.Dense(3)(x)


images = jnp.linspace(-1.0, 1.0, 2 * 6 * 6 * 2, dtype=jnp.float32).reshape(2, 6, 6, 2)
model = nnx.bridge.ToNNX(ConvEncoder(), rngs=nnx.Rngs(jax.random.PRNGKey(0))).lazy_init(images)
model_graphdef, params, model_rest = nnx.split(model, nnx.Param, ...)


def loss(params, images):
  return jnp.mean(nnx.merge(model_graphdef, params, model_rest, copy=True)(images) ** 2)


grads = jax.grad(loss)(params, images)
params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
out = nnx.merge(model_graphdef, params, model_rest, copy=True)(images)
