"""Benchmarks and scenario runners (development tooling: they start the emulator, which the functions never do)."""
