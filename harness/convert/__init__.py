"""Checkpoint layouts: diffusers <-> original single-file, and auditing conversions."""
