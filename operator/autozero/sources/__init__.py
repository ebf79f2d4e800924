"""Metric sources: one module per source behind the MetricSource protocol, and their registry."""
