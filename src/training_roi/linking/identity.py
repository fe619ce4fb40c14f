"""Identity resolution: which CRM user (rep) or contact each LMS learner is.

Every learner identity the LMS sources mention (an xAPI actor, a directory entry, a completion
row) is resolved to an email, then to a CRM user or, failing that, a contact and its account:

1. an explicit mapping file, when given, overrides everything;
2. the identity's own email (``mbox``, ``learner_email``), compared trimmed and lower-cased;
3. the LMS directory (``learners.csv``) for ``account`` actors and learner ids;
4. ``mbox_sha1sum`` against the SHA-1 of every known ``mailto:`` address.

One email that matches two CRM users (or two contacts) is reported as *ambiguous* with the
candidates, never guessed. The results go to ``learner_identity``; the learning evidence of all
LMS sources, voided statements removed, goes to ``learning_record`` keyed by the same identities.
All of it is Ibis expressions, so it runs on any engine the warehouse runs on.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.errors import SourceError
from training_roi.linking.records import learning_records
from training_roi.warehouse.connection import ensure_tables, row_count
from training_roi.warehouse.load import refresh_table, stage, unstage
from training_roi.warehouse.schema import table

__all__ = ["LINK_INPUTS", "LinkInfo", "link", "read_explicit_links"]

LINK_INPUTS = frozenset({"lms_statement", "lms_learner", "lms_completion", "crm_user", "crm_contact"})
"""The tables :func:`link` reads: loading rows into any other table leaves its result as it was."""

_NULL = ibis.null().cast("string")


@dataclass
class LinkInfo:
    """Link coverage: identities on the LMS side, and CRM users with and without learning."""

    identities: int
    linked_users: int
    linked_contacts: int
    unlinked: int
    ambiguous: int
    by_method: dict[str, int]
    crm_users: int
    crm_users_linked: int
    directory_learners_without_crm: int
    examples: dict[str, list[str]] = field(default_factory=dict)

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.identities:,} learner identities: {self.linked_users:,} linked to CRM users, "
            f"{self.linked_contacts:,} to contacts, {self.unlinked:,} unlinked, "
            f"{self.ambiguous:,} ambiguous; {self.crm_users_linked:,} of {self.crm_users:,} "
            f"CRM users have learning records"
        )


def read_explicit_links(path: Path | str) -> pa.Table:
    """Read an explicit link file: columns ``learner`` and ``crm_id``.

    ``learner`` is an email, an LMS learner id, or an actor key (``account:…``, ``mbox:…``);
    ``crm_id`` a User (005…) or Contact (003…) id.

    Raises
    ------
    SourceError
        The file is missing, or lacks one of the two columns, or a row leaves one empty.
    """
    p = Path(path)
    if not p.is_file():
        raise SourceError(str(p), "no such file")
    with p.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        for col in ("learner", "crm_id"):
            if col not in (reader.fieldnames or []):
                raise SourceError(str(p), "required column is missing", column=col)
        kinds, values, ids = [], [], []
        for n, row in enumerate(reader, start=2):
            learner, crm_id = (row["learner"] or "").strip(), (row["crm_id"] or "").strip()
            if not learner or not crm_id:
                raise SourceError(str(p), f"row {n} leaves learner or crm_id empty")
            if ":" in learner and not learner.lower().startswith("mailto:"):
                kinds.append("key")
                values.append(learner if not learner.startswith("mbox:") else learner.lower())
            elif "@" in learner:
                kinds.append("email")
                values.append(learner.lower().removeprefix("mailto:"))
            else:
                kinds.append("learner_id")
                values.append(learner)
            ids.append(crm_id)
    return pa.table({"kind": kinds, "value": values, "crm_id": ids})


def _identities(con: BaseBackend) -> ir.Table:
    """Every learner identity the LMS sources mention, with what each says about the person."""
    st = con.table("lms_statement")
    learners = con.table("lms_learner")
    comp = con.table("lms_completion")
    from_statements = st.select(
        learner_key=st.actor_key,
        learner_id=ibis.cases((st.actor_kind == "account", st.actor_account_name), else_=_NULL),
        email=st.actor_email,
        sha1=ibis.cases((st.actor_kind == "mbox_sha1sum", st.actor_key.substr(5)), else_=_NULL),
    )
    from_directory = learners.select(
        learner_key="lms:" + learners.learner_id,
        learner_id=learners.learner_id,
        email=learners.email_norm,
        sha1=_NULL,
    )
    from_completions = comp.select(
        learner_key=ibis.coalesce("lms:" + comp.learner_id, "mbox:" + comp.email_norm),
        learner_id=comp.learner_id,
        email=comp.email_norm,
        sha1=_NULL,
    )
    every = from_statements.union(from_directory).union(from_completions)
    ids = every.group_by("learner_key").agg(
        learner_id=every.learner_id.max(), own_email=every.email.max(), sha1=every.sha1.max()
    )
    directory = learners.select(dir_id=learners.learner_id, dir_email=learners.email_norm)
    ids = ids.left_join(directory, ids.learner_id == directory.dir_id).drop("dir_id")
    return ids


def _sha1_lookup(con: BaseBackend) -> ir.Table:
    """SHA-1 of every known ``mailto:`` address (xAPI's mbox_sha1sum), to resolve hashed actors."""
    emails: set[str] = set()
    for name, col in (("crm_user", "email_norm"), ("crm_contact", "email_norm"), ("lms_learner", "email_norm")):
        t = con.table(name)
        emails.update(v for v in t.select(col).distinct().to_pyarrow()[col].to_pylist() if v)
    ordered = sorted(emails)
    return stage(con, "_sha1_lookup", pa.table({
        "hash": pa.array([hashlib.sha1(f"mailto:{e}".encode()).hexdigest() for e in ordered], pa.string()),
        "hash_email": pa.array(ordered, pa.string()),
    }))


def _candidates(con: BaseBackend) -> tuple[ir.Table, ir.Table]:
    """CRM users and contacts by normalised email, with how many share each email."""
    users = con.table("crm_user")
    users = users.filter(users.email_norm.notnull())
    u = users.group_by(u_email=users.email_norm).agg(
        u_n=users.user_id.nunique(), u_id=users.user_id.min(), u_ids=users.user_id.collect().sort().join(", ")
    )
    contacts = con.table("crm_contact")
    contacts = contacts.filter(contacts.email_norm.notnull() & ~contacts.is_deleted.fill_null(False))
    c = contacts.group_by(c_email=contacts.email_norm).agg(
        c_n=contacts.contact_id.nunique(), c_id=contacts.contact_id.min(),
        c_account=contacts.account_id.min(), c_ids=contacts.contact_id.collect().sort().join(", "),
    )
    return u, c


def link(con: BaseBackend, *, explicit: Path | str | None = None) -> LinkInfo:
    """Resolve every LMS learner to the CRM and rebuild ``learner_identity`` and ``learning_record``.

    Parameters
    ----------
    con
        The warehouse, after ingest.
    explicit
        Optional CSV of explicit links (see :func:`read_explicit_links`); it overrides email and
        directory matches.
    """
    ensure_tables(con)
    ids = _identities(con)
    sha = _sha1_lookup(con)
    ids = ids.left_join(sha, ids.sha1 == sha.hash).drop("hash")
    ids = ids.mutate(
        email=ibis.coalesce(ids.own_email, ids.dir_email, ids.hash_email),
        method=ibis.cases(
            (ids.own_email.notnull(), "email"),
            (ids.dir_email.notnull(), "directory"),
            (ids.hash_email.notnull(), "sha1"),
            else_=_NULL,
        ),
    )
    users, contacts = _candidates(con)
    ids = ids.left_join(users, ids.email == users.u_email).left_join(contacts, ids.email == contacts.c_email)
    crm_user = ibis.cases((ids.u_n == 1, ids.u_id), else_=_NULL)
    crm_contact = ibis.cases((ids.u_n.isnull() & (ids.c_n == 1), ids.c_id), else_=_NULL)
    status = ibis.cases(
        (ids.u_n > 1, "ambiguous"),
        (ids.u_n == 1, "linked"),
        (ids.c_n > 1, "ambiguous"),
        (ids.c_n == 1, "linked"),
        else_="unlinked",
    )
    detail = ibis.cases(
        (ids.u_n > 1, "email matches CRM users " + ids.u_ids),
        (ids.u_n.isnull() & (ids.c_n > 1), "email matches contacts " + ids.c_ids),
        (ids.email.isnull(), "no email: not in the LMS directory and no mbox"),
        (ids.u_n.isnull() & ids.c_n.isnull(), "no CRM user or contact has email " + ids.email),
        else_=_NULL,
    )
    resolved = ids.select(
        learner_key=ids.learner_key,
        learner_id=ids.learner_id,
        email_norm=ids.email,
        crm_user_id=crm_user,
        crm_contact_id=crm_contact,
        crm_account_id=ibis.cases((ids.u_n.isnull() & (ids.c_n == 1), ids.c_account), else_=_NULL),
        method=ibis.cases((status == "linked", ids.method), else_=_NULL),
        status=status,
        detail=detail,
    )
    if explicit is not None:
        resolved = _apply_explicit(con, resolved, read_explicit_links(explicit))
    names = table("learner_identity").names
    refresh_table(con, "learner_identity", resolved.select(names))
    refresh_table(con, "learning_record", learning_records(con).select(table("learning_record").names))
    unstage(con, "_sha1_lookup")
    if explicit is not None:
        unstage(con, "_explicit_links")
    return _summarise(con)


def _apply_explicit(con: BaseBackend, resolved: ir.Table, links: pa.Table) -> ir.Table:
    """Override matches with the explicit links; an unknown CRM id leaves the learner unlinked."""
    lk = stage(con, "_explicit_links", links).rename(x_kind="kind", x_value="value", x_crm="crm_id")
    users = con.table("crm_user").select(x_user="user_id")
    contacts = con.table("crm_contact").select(x_contact="contact_id", x_account="account_id")
    lk = lk.left_join(users, lk.x_crm == users.x_user).left_join(contacts, lk.x_crm == contacts.x_contact)
    r = resolved
    cond = (
        ((lk.x_kind == "key") & (lk.x_value == r.learner_key))
        | ((lk.x_kind == "email") & (lk.x_value == r.email_norm))
        | ((lk.x_kind == "learner_id") & (lk.x_value == r.learner_id))
    )
    j = r.left_join(lk, cond)
    hit = j.x_crm.notnull()
    known = j.x_user.notnull() | j.x_contact.notnull()
    return j.select(
        learner_key=j.learner_key,
        learner_id=j.learner_id,
        email_norm=j.email_norm,
        crm_user_id=ibis.cases((hit, j.x_user), else_=j.crm_user_id),
        crm_contact_id=ibis.cases((hit, j.x_contact), else_=j.crm_contact_id),
        crm_account_id=ibis.cases((hit, j.x_account), else_=j.crm_account_id),
        method=ibis.cases((hit & known, "explicit"), (hit, _NULL), else_=j.method),
        status=ibis.cases((hit & known, "linked"), (hit, "unlinked"), else_=j.status),
        detail=ibis.cases(
            (hit & ~known, "explicit link names " + j.x_crm + ", which is not in the CRM"),
            (hit, _NULL),
            else_=j.detail,
        ),
    ).distinct(on="learner_key", keep="first")


def _summarise(con: BaseBackend) -> LinkInfo:
    li = con.table("learner_identity")
    by_status = {r["status"]: r["n"] for r in li.group_by("status").agg(n=li.count()).to_pyarrow().to_pylist()}
    linked = li.filter(li.status == "linked")
    by_method = {
        r["method"]: r["n"] for r in linked.group_by("method").agg(n=linked.count()).to_pyarrow().to_pylist()
    }
    users = con.table("crm_user")
    rec = con.table("learning_record")
    with_learning = li.filter(li.crm_user_id.notnull()).semi_join(rec, "learner_key")
    linked_users = with_learning.select("crm_user_id").distinct()
    directory = li.filter(li.learner_key.startswith("lms:") & li.crm_user_id.isnull() & li.crm_contact_id.isnull())
    examples = {
        status: [
            f"{r['learner_key']}: {r['detail']}"
            for r in li.filter(li.status == status).order_by("learner_key").limit(5).to_pyarrow().to_pylist()
        ]
        for status in ("unlinked", "ambiguous")
    }
    return LinkInfo(
        identities=sum(by_status.values()),
        linked_users=row_count(li.filter(li.crm_user_id.notnull())),
        linked_contacts=row_count(li.filter(li.crm_contact_id.notnull())),
        unlinked=by_status.get("unlinked", 0),
        ambiguous=by_status.get("ambiguous", 0),
        by_method=by_method,
        crm_users=row_count(users),
        crm_users_linked=row_count(linked_users),
        directory_learners_without_crm=row_count(directory),
        examples=examples,
    )
