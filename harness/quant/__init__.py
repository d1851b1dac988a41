"""Post-training quantization: range files, calibration, fake and real int8."""
