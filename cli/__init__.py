"""The `qreg` command."""
