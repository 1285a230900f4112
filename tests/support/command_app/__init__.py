"""A project's own app with async management commands, written as the docs show."""
