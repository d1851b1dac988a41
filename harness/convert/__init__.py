"""Checkpoint layouts: diffusers <-> original single-file, and auditing conversions."""


class UnmappedKeys(ValueError):
    """An exporter met keys of a layout it does not know."""
