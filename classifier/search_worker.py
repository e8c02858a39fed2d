"""Placeholder: the search worker's in-memory caches and the query task."""
