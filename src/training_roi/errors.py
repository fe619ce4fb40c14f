"""Exceptions of training-roi: the whole tree, in one place.

All derive from :class:`TrainingRoiError`, so a caller can catch the product's own failures
without catching programming errors. The command line turns them into a message and exit code 2,
never a traceback: they describe something the user can fix (a file, a row, a field, a key).

    TrainingRoiError
    ├── SourceError        a file cannot be read at all (encoding, missing required column)
    ├── MappingError       a column-mapping file is invalid (names the key and the field)
    ├── WarehouseError     the warehouse cannot be opened or lacks what a stage needs
    ├── StudyError         a study file is missing, is not YAML, breaks the study's rules, or
    │                      cannot be answered from this warehouse (names the key path)
    ├── StateError         the server's state file cannot be opened, or is missing where it must exist
    ├── AccountError       a server user cannot be added, found or changed (names the user and why)
    ├── SyncConfigError    a sync configuration is missing, not YAML, or breaks a rule (names the file and field)
    ├── SyncError          a live source cannot be read: unreachable, refusing the credentials, failing
    │                      after its retries (names the URL, never a credential)
    ├── SyncLocked         another sync or push of the same warehouse is running (says which process)
    ├── InvalidStatement   an xAPI statement breaks a rule; also a ValueError. Raised by the
    │                      public parsers; reading a file quarantines instead
    └── NotApplicable      an estimator cannot be used on this data (says why); also a ValueError
"""

from __future__ import annotations

__all__ = [
    "AccountError",
    "InvalidStatement",
    "MappingError",
    "NotApplicable",
    "SourceError",
    "StateError",
    "StudyError",
    "SyncConfigError",
    "SyncError",
    "SyncLocked",
    "TrainingRoiError",
    "WarehouseError",
]


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


class StudyError(TrainingRoiError):
    """A study file is missing, is not YAML, or breaks the study's rules; or the warehouse cannot answer it.

    The message names the file and, for each problem, the dotted key path and what was expected;
    ``problems`` holds the same as ``(key path, message)`` pairs for programs that want them.
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        self.problems: list[tuple[str, str]] = problems or []
        super().__init__(message)


class StateError(TrainingRoiError):
    """The server's state file (users, sessions, the audit log, results) cannot be opened; names the file."""


class AccountError(TrainingRoiError):
    """A server user cannot be added, found or changed: a bad name or role, a name taken, a user missing."""


class SyncConfigError(TrainingRoiError):
    """A sync configuration is missing, is not YAML or breaks a rule; names the file and the field."""


class SyncError(TrainingRoiError):
    """A live source could not be read; names the source's URL (never a credential) and what happened."""


class SyncLocked(TrainingRoiError):
    """Another sync of the same warehouse holds its lock; names the lock file and the process holding it."""


class InvalidStatement(TrainingRoiError, ValueError):
    """A statement (or an Agent/Group inside it) breaks an xAPI rule the product relies on.

    ``field`` is the path of the offending property (``"actor"``, ``"verb.id"``,
    ``"actor.member[1].mbox"``); ``reason`` is a sentence a user understands.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field or 'statement'}: {reason}")


class NotApplicable(TrainingRoiError, ValueError):
    """The method cannot be used on this data; the message says why, in the user's terms."""
