"""Inference library: see inference/README.md. The public API is `inference.model`."""
