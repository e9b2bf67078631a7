"""Security tests: hostile input, transport, secrets hygiene (issue 8)."""
