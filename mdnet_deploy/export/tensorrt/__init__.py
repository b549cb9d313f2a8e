"""TensorRT engines: Python-API builder, trtexec fallback, the tiny smoke model."""
