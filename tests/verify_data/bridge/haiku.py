"""A conv encoder whose dense layer's input width is lost in a flatten: the NNX target bridges its Linen migration."""
import haiku as hk
import jax
import jax.numpy as jnp


class ConvEncoder(hk.Module):
  def __call__(self, images):
    x = hk.Conv2D(output_channels=4, kernel_shape=3, stride=2)(images)
    x = jax.nn.relu(x)
    x = x.reshape(x.shape[0], -1)
    x = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)
    return hk.Linear(3)(x)


def forward(images):
  return ConvEncoder()(images)


model = hk.without_apply_rng(hk.transform(forward))
images = jnp.linspace(-1.0, 1.0, 2 * 6 * 6 * 2, dtype=jnp.float32).reshape(2, 6, 6, 2)
params = model.init(jax.random.PRNGKey(0), images)


def loss(params, images):
  return jnp.mean(model.apply(params, images) ** 2)


grads = jax.grad(loss)(params, images)
params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
out = model.apply(params, images)
