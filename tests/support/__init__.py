"""What the test suites share, one module per concern.

- `spec`: where the vendors' OpenAPI descriptions live, and the one checker (`openapi`, with
  the value rules in `schema`); a missing spec folder skips on a laptop and fails in CI.
- `vcr`: the one vcrpy set-up (readable serializer, fake Authorization, scrubbed responses,
  cassettes in `tests/cassettes/<module>/`).
- `clock`: the one fake clock.
- `databases`: isolated SQLite files, PostgreSQL schemas and MariaDB databases.
- `fixtures`: the shared pytest fixtures (`db_engine`, `db_url`, `db`, `clock`), registered by
  `tests/conftest.py`.
- `tcp_proxy`: a loopback TCP forwarder a test can cut or blackhole.
"""
