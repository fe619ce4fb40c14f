"""The users as an admin sees and changes them: one line each, roles, tokens revoked, and always an admin left.

The store (:mod:`training_roi.web.store`) keeps users, their API tokens and the audit log; this
module adds what managing them needs on top:

* :func:`accounts` — every user with what an admin wants to know at a glance: role, whether a
  password is set, how many API tokens they have and when one was last used, and when they last
  signed in to the pages (their latest ``login`` line of the audit log);
* :func:`set_role`, :func:`delete_user` and :func:`revoke_tokens` — changes that check and write in
  one transaction holding the state file's write lock, so that two admins demoting (or removing) each
  other at the same moment cannot leave the server without an admin who can still manage its users.

:func:`audit_actions` lists the actions the audit log holds, for the admin's filter of it.

The changes write nothing to the audit log: :mod:`training_roi.web.auth` wraps them with who did it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from training_roi.errors import AccountError
from training_roi.web.store import Role, Store, User, validate_user

__all__ = ["Account", "LastAdminError", "accounts", "audit_actions", "delete_user", "revoke_tokens", "set_role"]


class LastAdminError(AccountError):
    """The change would leave no admin (who is not disabled) to manage the server's users."""


@dataclass(frozen=True)
class Account:
    """One user as the admin page and ``GET /api/v1/users`` list them; never a token or a password's hash."""

    name: str
    role: Role
    created: datetime
    password_set: bool
    disabled: bool
    tokens: int
    token_last_used: datetime | None
    last_sign_in: datetime | None


def _moment(text: str | None) -> datetime | None:
    """A time as the store writes it (``2025-01-31T09:30:00.000000Z``), read back as UTC."""
    return None if text is None else datetime.fromisoformat(text)


def accounts(store: Store) -> list[Account]:
    """Every user by name, with their tokens' count and last use and their last sign-in (None: never).

    A sign-in older than the user was made belongs to an earlier user of the same name (removed,
    then added again), so it is not theirs.
    """
    with store.transaction() as con:  # one snapshot of users, tokens and sign-ins
        rows = con.execute(
            "SELECT u.name, u.role, u.created, u.password_hash IS NOT NULL, u.disabled, count(t.token_hash), "
            "max(t.last_used) FROM users u LEFT JOIN api_tokens t ON t.user_id = u.id GROUP BY u.id "
            "ORDER BY u.name").fetchall()
        # One pass over the log for every user's latest sign-in, rather than one per user.
        signed_in = dict(con.execute("SELECT lower(user), max(at) FROM audit_log WHERE action = 'login' "
                                     "AND user IS NOT NULL GROUP BY lower(user)").fetchall())
    found = []
    for name, role, created, password_set, disabled, tokens, last_used in rows:
        made = datetime.fromisoformat(created)
        last = _moment(signed_in.get(name.lower()))
        found.append(Account(name=name, role=role, created=made, password_set=bool(password_set),
                             disabled=bool(disabled), tokens=tokens, token_last_used=_moment(last_used),
                             last_sign_in=last if last is not None and last >= made else None))
    return found


def _user_id(con: sqlite3.Connection, name: str) -> tuple[int, str, Role]:
    """The id, name (as stored) and role of the user of that name (any case), or an AccountError."""
    row = con.execute("SELECT id, name, role FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise AccountError(f"no user {name!r}: `training-roi users list` shows who there is")
    return row[0], row[1], cast(Role, row[2])


def _keep_an_admin(con: sqlite3.Connection, user_id: int, name: str, role: str, change: str) -> None:
    """Refuse ``change`` to an admin when no other admin (not disabled) would be left."""
    if role != "admin":
        return
    others = con.execute("SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled AND id != ?",
                         (user_id,)).fetchone()[0]
    if others == 0:
        raise LastAdminError(f"{name} is the last admin: {change} would leave nobody to manage the users; "
                             "make another user admin first")


def set_role(store: Store, name: str, role: str) -> tuple[User, Role]:
    """Give a user another role; the user as changed and the role they had.

    Raises
    ------
    AccountError
        The role is not one the server knows, or there is no such user.
    LastAdminError
        The user is the last admin and the new role is not admin.
    """
    validate_user(name, role)
    with store.transaction() as con:
        user_id, stored, before = _user_id(con, name)
        if role != "admin":
            _keep_an_admin(con, user_id, stored, before, f"making them {role}")
        con.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id))
    return store.require_user(stored), before


def delete_user(store: Store, name: str) -> tuple[User, int]:
    """Remove a user with their API tokens and sessions; the user removed and how many tokens stopped working.

    The audit log and the studies' results keep their name.

    Raises
    ------
    AccountError
        There is no such user.
    LastAdminError
        The user is the last admin.
    """
    user = store.require_user(name)
    with store.transaction() as con:
        user_id, stored, role = _user_id(con, name)
        _keep_an_admin(con, user_id, stored, role, "removing them")
        tokens = con.execute("SELECT count(*) FROM api_tokens WHERE user_id = ?", (user_id,)).fetchone()[0]
        con.execute("DELETE FROM users WHERE id = ?", (user_id,))
    return user, tokens


def revoke_tokens(store: Store, name: str) -> int:
    """Delete every API token of a user (their password and sessions keep working); how many there were."""
    with store.transaction() as con:
        user_id, _, _ = _user_id(con, name)
        return con.execute("DELETE FROM api_tokens WHERE user_id = ?", (user_id,)).rowcount


def audit_actions(store: Store) -> list[str]:
    """The actions the audit log holds (``login``, ``user_added``, ``view`` …), sorted: the audit page's choices."""
    with store.transaction() as con:
        return [r[0] for r in con.execute("SELECT DISTINCT action FROM audit_log ORDER BY action").fetchall()]
