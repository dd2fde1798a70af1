"""The worker process helper lives in the package; tests import it from here."""

from streams.process import WorkerProcess

__all__ = ["WorkerProcess"]
