"""Tables a user brings, as Polars frames: one conversion at every public boundary that takes a table.

A data scientist's table is as likely a pandas DataFrame or an Arrow table as a Polars one.
Every public function of the measurement and isolation stages that takes a table passes it
through :func:`as_polars` first, so a pandas frame works wherever a Polars frame does instead of
failing deep inside on a method pandas does not have. pandas is not imported here (it is not a
dependency of the product): a frame is recognised by the module its type comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import polars as pl
import pyarrow as pa

__all__ = ["TableLike", "as_polars", "require_columns"]

TableLike: TypeAlias = Any
"""A table :func:`as_polars` accepts: a Polars or pandas DataFrame, a pyarrow Table, a mapping of columns."""


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.split(".")[0] == "pandas" and hasattr(data, "columns")


def as_polars(data: Any, name: str = "data") -> pl.DataFrame:
    """``data`` as a Polars DataFrame.

    Accepted: a Polars DataFrame (returned as is) or LazyFrame (collected), a pandas DataFrame
    (its named index levels become columns, NaN becomes null), a pyarrow Table or RecordBatch,
    any object that exports an Arrow stream (``__arrow_c_stream__``), or a mapping of column
    names to values. ``name`` names the argument in the error message.

    Raises
    ------
    TypeError
        Anything else (a list, a path, a NumPy array: their columns have no names).
    """
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if _is_pandas(data):
        named = [n for n in getattr(data.index, "names", [None]) if n is not None]
        converted = pl.from_pandas(data, include_index=bool(named))
        assert isinstance(converted, pl.DataFrame)
        return converted
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table) and hasattr(data, "__arrow_c_stream__"):
        data = pa.table(data)
    if isinstance(data, pa.Table):
        frame = pl.from_arrow(data)
        assert isinstance(frame, pl.DataFrame)
        return frame
    if isinstance(data, Mapping):
        return pl.DataFrame(dict(data))
    raise TypeError(f"{name} must be a table with named columns — a pandas or Polars DataFrame, or a pyarrow "
                    f"Table — not {type(data).__module__}.{type(data).__qualname__}")


def require_columns(frame: pl.DataFrame, columns: Mapping[str, str], what: str = "the data") -> None:
    """Raise ValueError naming every column of ``columns`` (column → its role) that ``frame`` lacks.

    Raises
    ------
    ValueError
        A named column is not in ``frame``; the message names it, its role and the columns there are.
    """
    missing = [f"{column!r} ({role})" for column, role in columns.items() if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} has no column {', '.join(missing)}; its columns are "
                         f"{', '.join(repr(c) for c in frame.columns) or 'none'}")
