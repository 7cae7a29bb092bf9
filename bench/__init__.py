"""Benchmarks: tenure's speed as ratios against raw baselines measured in the same run."""
