"""The management API, /api/v0/…: JSON for the CLI and the web UI."""
