"""Storage: models, engine/sessions, migrations."""
