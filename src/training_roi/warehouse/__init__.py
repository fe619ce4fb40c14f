"""Warehouse: the canonical tables (one DuckDB file by default, any Ibis backend), loading and quality."""
