"""The judge phase: thresholds, negative controls, baseline comparisons and sequential stopping."""
