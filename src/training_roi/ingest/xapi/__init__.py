"""Reading xAPI statements (as an LRS returns them) into the ``lms_statement`` table.

A file is recognised by its content, not its extension: JSON lines (one statement a line), a
single statement, a JSON array of statements, or an LRS page ``{"statements": [...], "more": ...}``.
Every statement is checked against the parts of xAPI 1.0.3 the analysis relies on (who did it,
what they did, to what, when, with which result) and is either loaded or put in quarantine with
the field at fault and a reason; a file that is not UTF-8 is quarantined as a whole (line 0).

What a row holds and why:

- one row per statement and learner: a Group actor with members gives one row per member, so a
  team's completion counts for each person in it (``group_key`` names the Group);
- ``statement_id`` is the statement's id in lower case, or, when it has none, a UUID derived
  from the statement's canonical JSON, so loading the same files twice loads the same records;
- the same statement id delivered twice (within a file or across files) is loaded once, from
  its first delivery, and counted in ``Batch.rows_duplicate``;
- voiding is recorded (``voided_statement_id``) but not resolved: ``is_voided`` is false here and
  the warehouse recomputes it over every statement it holds, whatever order files came in.

The reader is written for volume (an LRS export of a million statements): orjson parses each
statement, values go into one tuple per row that is turned into Arrow every 131,072 rows, the
slow checks (repeated keys, exact raw text of an array element) run only when needed, and
JSON-lines files are read in 16 MiB blocks of whole lines, by worker processes when large.

The modules, each using only those listed before it:

- :mod:`.times`: ISO 8601 timestamps and durations;
- :mod:`.actor`: an actor (Agent or Group) checked and turned into learner identities;
- :mod:`.statement`: one statement checked and turned into rows;
- :mod:`.framing`: a file's raw text: its form, where each statement is, repeated keys;
- :mod:`.rows`: statements collected as rows, duplicates and quarantine;
- :mod:`.parallel`: the blocks of a large JSON-lines file, read by worker processes;
- :mod:`.reader`: :func:`read_xapi`, files of any form read into one batch.
"""

from __future__ import annotations

from training_roi.errors import InvalidStatement
from training_roi.ingest.xapi.actor import Identity, actor_identities
from training_roi.ingest.xapi.reader import read_xapi
from training_roi.ingest.xapi.times import parse_duration, parse_timestamp

__all__ = [
    "Identity",
    "InvalidStatement",
    "actor_identities",
    "parse_duration",
    "parse_timestamp",
    "read_xapi",
]
