"""The web UI: server-rendered pages (Jinja2) over the same state queries and
permission checks as the management API, whose endpoints its forms call (with the
session cookie and the page's CSRF token: replica/auth/sessions.py)."""
