"""The data path: corpus reading, splitting, tokenizers, token-edit processors, indexed datasets."""
