"""The library: one folder with a SQLite database and a thumbnail cache."""
