"""Synthetic multi-device data with ground truth, for tests, benchmarks and the demo."""
