"""The generate phase: every configuration's samples, from the cache or generated, in one strategy."""
