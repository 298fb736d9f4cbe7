"""The package version (read by pyproject.toml, written into checkpoints, exports and runs)."""

VERSION = "0.1.0"
