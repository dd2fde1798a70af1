"""The import contracts in pyproject.toml hold: layers import one way only (cli > api wiring >
web > pipeline > core > contract > base), the core and the contract load no Faust, Kafka or
HTTP, and the web layer no Faust or Kafka."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_import_contracts_hold() -> None:
    assert lint_imports(config_filename=str(PYPROJECT), no_cache=True) == 0
