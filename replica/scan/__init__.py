"""Vulnerability scanning: each layer's package inventory (layers.py, packages.py), an
offline OSV database (osv.py), matching with each ecosystem's version order
(versions.py, matching.py), and the scanner that runs after pushes (scanner.py)."""
