"""Fuzzing: atheris harnesses, hypothesis fuzz tests and a replayable seed corpus."""
