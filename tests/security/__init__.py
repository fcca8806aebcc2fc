"""Security tests: each control is shown to hold, and (where it can be removed) to matter."""
