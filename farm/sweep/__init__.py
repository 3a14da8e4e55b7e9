"""Sweep files: schema, located validation, and expansion into jobs."""
