"""h2f: migrate Haiku source code to Flax (Linen or NNX)."""

__version__ = "0.1.0"
