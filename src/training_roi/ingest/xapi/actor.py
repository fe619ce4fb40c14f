"""Who did it: an xAPI actor (an Agent, or a Group and its members) checked and turned into learner identities.

Each Agent is keyed by its one inverse functional identifier (mbox, mbox_sha1sum, openid or
account), the key the warehouse links to CRM users and contacts. The same rules check the actor,
an Agent or Group used as a statement's object, and the authority.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training_roi.errors import InvalidStatement

__all__ = ["Ident", "Identity", "actor_identities", "check_actor"]

_SHA1_CHARS = "0123456789abcdefABCDEF"


@dataclass(frozen=True, slots=True)
class Identity:
    """One learner identity (an Agent's inverse functional identifier), as the warehouse keys it.

    ``key`` is ``mbox:<email>``, ``sha1:<hash>``, ``openid:<uri>`` or
    ``account:<homePage>|<name>``; ``kind`` names the identifier (``mbox``, ``mbox_sha1sum``,
    ``openid``, ``account``).
    """

    key: str
    kind: str
    email: str | None = None
    account_name: str | None = None
    account_home: str | None = None
    name: str | None = None


# Internally an identity is a plain tuple in Identity's field order: it is built for every
# row, and a frozen dataclass costs several times more to create.
Ident = tuple[str, str, str | None, str | None, str | None, str | None]


def actor_identities(actor: dict[str, Any]) -> list[Identity]:
    """Return the validated identities of an xAPI actor: an Agent's own, or a Group's members.

    An Agent, or an identified Group, must carry exactly one of ``mbox`` (a ``mailto:`` IRI,
    compared case-insensitively), ``mbox_sha1sum``, ``openid`` or ``account`` (``homePage`` and
    ``name``). A Group with members yields its members; an identified Group without members
    yields itself; an anonymous Group must list members.

    Parameters
    ----------
    actor
        The decoded JSON object of the actor.

    Returns
    -------
    list[Identity]
        One identity per learner, in the order given.

    Raises
    ------
    InvalidStatement
        The actor breaks one of the rules above; ``field`` says where (``actor.member[0]``).

    Examples
    --------
    >>> actor_identities({"mbox": "mailto:Ann@Example.com", "name": "Ann"})[0].key
    'mbox:ann@example.com'

    """
    identities, _, _ = check_actor(actor, "actor")
    return [Identity(*ident) for ident in identities]


def _ifi(d: dict[str, Any], path: str) -> Ident | None:
    """Return the Agent/Group's inverse functional identifier, or None when it has none."""
    mbox = d.get("mbox")
    sha = d.get("mbox_sha1sum")
    openid = d.get("openid")
    account = d.get("account")
    found = (mbox is not None) + (sha is not None) + (openid is not None) + (account is not None)
    if found == 0:
        return None
    if found > 1:
        given = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if d.get(k) is not None]
        raise InvalidStatement(
            path, f"has {' and '.join(given)}: an Agent or Group must have exactly one identifier"
        )
    name = d.get("name")
    if name is not None and type(name) is not str:
        raise InvalidStatement(f"{path}.name", "the name must be text")
    if mbox is not None:
        if type(mbox) is not str or mbox[:7].lower() != "mailto:":
            raise InvalidStatement(
                f"{path}.mbox", f"{mbox!r} is not a mailto: address (mbox must be mailto:<email>)"
            )
        email = mbox[7:].lower()
        local, at, domain = email.rpartition("@")
        if not at or not local or not domain:
            raise InvalidStatement(f"{path}.mbox", f"{mbox!r} does not hold an email address")
        return ("mbox:" + email, "mbox", email, None, None, name)
    if account is not None:
        if type(account) is not dict:
            raise InvalidStatement(f"{path}.account", "account must be an object")
        home = account.get("homePage")
        acc_name = account.get("name")
        if type(home) is not str or not home:
            raise InvalidStatement(f"{path}.account.homePage", "an account needs its homePage")
        if type(acc_name) is not str or not acc_name:
            raise InvalidStatement(f"{path}.account.name", "an account needs its name")
        return (f"account:{home}|{acc_name}", "account", None, acc_name, home, name)
    if sha is not None:
        if type(sha) is not str or len(sha) != 40 or sha.strip(_SHA1_CHARS):
            raise InvalidStatement(
                f"{path}.mbox_sha1sum", f"{sha!r} is not a SHA-1 hash (40 hexadecimal digits)"
            )
        return ("sha1:" + sha.lower(), "mbox_sha1sum", None, None, None, name)
    if type(openid) is not str or ":" not in openid:
        raise InvalidStatement(f"{path}.openid", f"{openid!r} is not an OpenID URI")
    return ("openid:" + openid, "openid", None, None, None, name)


def check_actor(d: object, path: str) -> tuple[list[Ident], bool, str | None]:
    """Validate an Agent or Group: (identities, is it a Group, the Group's own key)."""
    if type(d) is not dict:
        raise InvalidStatement(path, "must be an Agent or Group object")
    kind = d.get("objectType", "Agent")
    if kind == "Agent":
        ident = _ifi(d, path)
        if ident is None:
            raise InvalidStatement(
                path, "an Agent needs one of mbox, mbox_sha1sum, openid or account to say who it is"
            )
        return [ident], False, None
    if kind != "Group":
        raise InvalidStatement(f"{path}.objectType", f"{kind!r} is not Agent or Group")
    own = _ifi(d, path)
    members = d.get("member")
    if members is None or members == []:
        if own is None:
            raise InvalidStatement(
                path, "an anonymous Group (one without an identifier) must list its members"
            )
        return [own], True, own[0]
    if type(members) is not list:
        raise InvalidStatement(f"{path}.member", "member must be a list of Agents")
    idents: list[Ident] = []
    for i, member in enumerate(members):
        where = f"{path}.member[{i}]"
        if type(member) is not dict:
            raise InvalidStatement(where, "a Group member must be an Agent object")
        if member.get("objectType", "Agent") != "Agent":
            raise InvalidStatement(f"{where}.objectType", "a Group's members must be Agents")
        ident = _ifi(member, where)
        if ident is None:
            raise InvalidStatement(
                where, "a Group member needs one of mbox, mbox_sha1sum, openid or account"
            )
        idents.append(ident)
    return idents, True, own[0] if own is not None else None
