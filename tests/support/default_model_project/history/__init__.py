"""The app's migrations before they were squashed (docs/migrating.md, path A): the test
of that path runs them with ``MIGRATION_MODULES`` pointing here."""
