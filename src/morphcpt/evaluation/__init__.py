"""Filipino morphology benchmarks: generation, scoring, analysis."""
