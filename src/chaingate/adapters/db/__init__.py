"""Relational storage: SQLite by default, PostgreSQL when scaled out. Same schema, same code."""
