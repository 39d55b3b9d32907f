"""Persistence: SQLAlchemy models, repository functions, migrations and encryption."""
