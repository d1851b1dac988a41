"""Configuration kinds, each behind :class:`harness.kinds.base.ConfigKind`: one module, or one folder where a kind
has parts of its own (gguf/, int8/, streaming/, single_file/). The registry lists them (:mod:`harness.registry`)."""
