"""Exceptions of training-roi.

All derive from :class:`TrainingRoiError`, so a caller can catch the product's own failures
without catching programming errors. The command line turns them into a message and exit code 2,
never a traceback: they describe something the user can fix (a file, a row, a field, a key).

    TrainingRoiError
    ├── SourceError        a file cannot be read at all (encoding, missing required column)
    ├── MappingError       a column-mapping file is invalid (names the key and the field)
    ├── WarehouseError     the warehouse cannot be opened or lacks what a stage needs
    └── InvalidStatement   (ingest.xapi) an xAPI statement breaks a rule; also a ValueError.
                           Raised by the public parsers; read_xapi quarantines instead.
"""

from __future__ import annotations

__all__ = ["MappingError", "SourceError", "TrainingRoiError", "WarehouseError"]


class TrainingRoiError(Exception):
    """Base of every error the product raises on purpose."""


class SourceError(TrainingRoiError):
    """A source file cannot be read at all; names the file and, where it applies, the column."""

    def __init__(self, file: str, message: str, column: str | None = None) -> None:
        self.file = file
        self.column = column
        where = f"{file}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}")


class MappingError(TrainingRoiError):
    """A column mapping is invalid; names the mapping file and the key path."""


class WarehouseError(TrainingRoiError):
    """The warehouse cannot be opened, or lacks a table a stage needs."""
