"""Morphology benchmarks of a language pack: generation, scoring, analysis."""
