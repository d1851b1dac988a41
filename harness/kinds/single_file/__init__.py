"""``kind = "single_file"``: components from original-layout checkpoints, audited before loading."""
