"""Ingest: read the files a user hands over, validate every row, and yield batches for the warehouse."""
