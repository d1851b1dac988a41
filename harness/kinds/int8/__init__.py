"""``kind = "int8"``: static W8A8 post-training quantization with calibrated activation ranges."""
