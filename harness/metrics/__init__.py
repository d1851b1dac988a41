"""Metrics, one per module behind :mod:`harness.metrics.base`. The registry lists them (:mod:`harness.registry`)."""
