"""Collect georeferenced image chips from SAS.Planet tile caches (tile math, cache layouts, cache readers)."""
