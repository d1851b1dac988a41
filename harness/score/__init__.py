"""The score phase: per-sample values and per-configuration summaries against the references."""
