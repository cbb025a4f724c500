"""Helpers for tests that run the real service: processes, environments, API clients."""
