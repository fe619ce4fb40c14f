"""The server: a dashboard of pages and an authenticated JSON API over the warehouse and the studies' results.

``training-roi serve --db roi.duckdb`` starts it; ``training-roi users add NAME --role ROLE`` gives
someone access. Modules:

* :mod:`training_roi.web.store` — the server's own state (users, their tokens and login sessions,
  the audit log, the studies' results by hash), in a SQLite file beside the warehouse, so that the
  warehouse itself stays read-only for the server;
* :mod:`training_roi.web.auth` — passwords (Argon2id), API tokens, sessions, roles and what each may see.
"""
