"""Helpers shared by the test suites (certificates, fixtures' building blocks)."""
