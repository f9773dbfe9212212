"""Accounts and Docker token authentication: passwords, permissions, the token service."""
