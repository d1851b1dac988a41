"""``kind = "streaming"``: the low-memory runtime on diffusers' offloading."""
