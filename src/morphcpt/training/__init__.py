"""Training backends: NeMo 2 on clusters, a tiny Gemma 3 on CPU; checkpoints and export."""
