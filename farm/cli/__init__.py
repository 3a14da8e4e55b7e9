"""The `farm` command line."""
