"""Mirroring: images pushed to, and pulled from, other registries."""
