"""Benchmark harness: ``consent-streams bench``; see docs/performance.md."""
