"""Secrets for live sources, read at the moment they are needed from the environment or a keyring.

A :class:`Secret` never shows its value: not in ``repr``, ``str``, a log line or an exception, so
a message built carelessly around one still holds no credential. Only the HTTP layer asks for
the value, to put it in a header.
"""

from __future__ import annotations

import os

from training_roi.errors import SyncConfigError
from training_roi.sync.config import SecretRef

__all__ = ["Secret", "resolve"]


class Secret:
    """A credential's value, hidden from every printed form of the object."""

    __slots__ = ("_value", "where")

    def __init__(self, value: str, where: str) -> None:
        self._value = value
        self.where = where

    def reveal(self) -> str:
        """The value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(from {self.where})"

    __str__ = __repr__


def resolve(ref: SecretRef | str | None, what: str, config: str) -> Secret | None:
    """Read the value ``ref`` names (a literal user name is returned as is).

    Raises
    ------
    SyncConfigError
        The variable is unset or empty, the keyring has no such entry, or no keyring is installed;
        the message names the variable or entry and the configuration file, never a value.
    """
    if ref is None:
        return None
    if isinstance(ref, str):
        return Secret(ref, "the configuration")
    if ref.env:
        value = os.environ.get(ref.env)
        if not value:
            raise SyncConfigError(f"{config}: the {what} is read from the environment variable {ref.env}, "
                                  "which is not set: export it before the sync (docs/sync.md)")
        return Secret(value, ref.describe())
    assert ref.keyring is not None
    service, user = ref.keyring
    try:
        import keyring  # optional: `pip install keyring` (the `keyring` extra)
        from keyring.errors import KeyringError
    except ImportError:
        raise SyncConfigError(f"{config}: the {what} is read from {ref.describe()}, but the keyring package is "
                              "not installed: pip install 'training-roi[keyring]', or use an environment "
                              "variable") from None
    try:
        value = keyring.get_password(service, user)
    except KeyringError as exc:
        raise SyncConfigError(f"{config}: the {what} could not be read from {ref.describe()}: "
                              f"{type(exc).__name__}") from None
    if not value:
        raise SyncConfigError(f"{config}: the keyring holds no {what} for {ref.describe()}: store it with "
                              f"`keyring set {service} {user}`")
    return Secret(value, ref.describe())
