"""Names and places of a measurement."""

from __future__ import annotations

from pathlib import Path

from bench.systems import Run


def test_runs_in_one_workdir_keep_their_stores_apart(tmp_path: Path) -> None:
    """A kept --workdir used again: a worker on a new broker must not open an earlier run's
    stores (it would stop on their changelog offsets)."""
    first = Run("127.0.0.1:1", tmp_path, web_port=1)
    again = Run("127.0.0.1:1", tmp_path, web_port=2)
    assert first.data_dir != again.data_dir
    assert first.data_dir.parent == again.data_dir.parent == tmp_path / "data"
