"""Starts Ralph's LRS (``ralph-malph``, file-system backend) on the loopback address, for the sync tests.

Run with the Python of Ralph's own virtual environment (it pins versions the product does not):
``python ralph_server.py PORT DATA_DIR``, with the user name and password in ``LRS_TEST_USER`` and
``LRS_TEST_PASSWORD``. It writes Ralph's Basic-auth file, then serves until it is stopped.

One change to Ralph, and why: its file-system backend writes every POST with the operation
"create", which refuses a file that exists, so only the first POST of a server's life is stored
(later ones answer 500 "Statements bulk indexation failed"). Appending is what an LRS does, so
the backend's default operation is set to "append" before the server starts.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    port, data_dir = int(sys.argv[1]), Path(sys.argv[2])
    data_dir.mkdir(parents=True, exist_ok=True)
    import bcrypt

    auth_file = data_dir.parent / "ralph-auth.json"
    password = os.environ["LRS_TEST_PASSWORD"].encode()
    auth_file.write_text(json.dumps([{
        "agent": {"mbox": "mailto:sync@example.com", "objectType": "Agent"},
        "scopes": ["all"],
        "hash": bcrypt.hashpw(password, bcrypt.gensalt(4)).decode(),
        "username": os.environ["LRS_TEST_USER"],
    }]), encoding="utf-8")
    os.environ.update({
        "RALPH_APP_DIR": str(data_dir.parent / "ralph-app"),
        "RALPH_AUTH_FILE": str(auth_file),
        "RALPH_RUNSERVER_BACKEND": "fs",
        "RALPH_RUNSERVER_AUTH_BACKENDS": "basic",
        "RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT": "1000",
        "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(data_dir),
    })
    from ralph.backends.data.base import BaseOperationType
    from ralph.backends.lrs.fs import FSLRSBackend

    FSLRSBackend.default_operation_type = BaseOperationType.APPEND
    import uvicorn

    uvicorn.run("ralph.api:app", host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
