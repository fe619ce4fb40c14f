"""What a ``--db`` target names, told without importing the engine.

The command line needs the default warehouse for its help and, for ``report``'s answer cache, the
DuckDB file a target names; importing Ibis and DuckDB for that would cost a fraction of a second on
every command. :func:`~training_roi.warehouse.connection.connect` reads targets with the same rule.
"""

from __future__ import annotations

__all__ = ["DEFAULT_DB", "duckdb_file"]

DEFAULT_DB = "roi.duckdb"


def duckdb_file(target: str) -> str | None:
    """The DuckDB file ``target`` names: a plain path, or a ``duckdb://`` URL's path without its query.

    None for the URL of another engine (``postgres://…``).
    """
    if target.lower().startswith("duckdb://"):
        return target.split("://", 1)[1].split("?", 1)[0]
    return None if "://" in target else target
