"""Results database: models, sessions and migrations."""
