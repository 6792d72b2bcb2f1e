"""Residents in bulk: the CSV file format (PRODUCT.md §8), its import and export."""
