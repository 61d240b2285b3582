"""Database: typed tables, the engine, and migrations."""
