"""The systems the worker is compared with, each run as its own process by the harness."""
