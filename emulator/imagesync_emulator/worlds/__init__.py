"""Built-in world files (package data)."""
