"""Helpers for the book's chapters (generated data, tiny models, glue); not part of the graded contract."""
