"""Gradient surgery and task weighting methods, one per module, registered in `registry`."""
