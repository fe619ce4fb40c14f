"""The server: a dashboard of pages and an authenticated JSON API over the warehouse and the studies' results.

``training-roi serve --db roi.duckdb`` starts it; ``training-roi users add NAME --role ROLE`` gives
someone access (docs/server.md). Modules:

* :mod:`training_roi.web.store` — the server's own state (users, their tokens and login sessions,
  the audit log, the studies' results by hash and their files), in a SQLite file beside the
  warehouse, so that the warehouse itself stays read-only for the server;
* :mod:`training_roi.web.auth` — passwords (Argon2id), API tokens, sessions, roles and what each may see,
  and the changes to users the command line, the admin page and the API all make;
* :mod:`training_roi.web.roster` — the users as an admin lists and changes them, never leaving the
  server without an admin;
* :mod:`training_roi.web.snapshot` — the copy of the warehouse the server reads, swapped after each load;
* :mod:`training_roi.web.access` — the FastAPI dependencies: who is asking, and may they;
* :mod:`training_roi.web.programs` and :mod:`training_roi.web.results` — a stored result as a program
  row, and results imported from folders ``report`` wrote, with a viewer's copy without people;
* :mod:`training_roi.web.api`, :mod:`training_roi.web.pages`, :mod:`training_roi.web.app` — the API
  under ``/api/v1``, the pages, and the application that wires them; :mod:`training_roi.web.admin` —
  the admin area's pages and endpoints (users, the audit log).
"""
