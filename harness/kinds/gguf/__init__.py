"""``kind = "gguf"``: GGUF files written and read by the harness, loaded through diffusers."""
