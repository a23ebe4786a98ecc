"""User-facing front ends: the command line (cli.py) and the PySide6 desktop app.

Importing this package does not import Qt; only the GUI modules do.
"""
