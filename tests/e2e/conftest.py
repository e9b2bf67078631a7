"""End-to-end tests share the session server defined in tests/conftest.py."""
