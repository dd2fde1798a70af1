"""The import contracts in pyproject.toml hold: layers import one way only (cli > api wiring >
web > pipeline > core > contract > base), the core and the contract load no Faust, Kafka or
HTTP, and the web layer no Faust or Kafka."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"


def test_import_contracts_hold() -> None:
    # lint_imports configures logging and disables every logger that exists by then: enable
    # them again, or the tests that read log records would pass only when they run before this.
    loggers = logging.root.manager.loggerDict.values()
    enabled = [lg for lg in loggers if isinstance(lg, logging.Logger) and not lg.disabled]
    try:
        assert lint_imports(config_filename=str(PYPROJECT), no_cache=True) == 0
    finally:
        for logger in enabled:
            logger.disabled = False


def test_every_module_is_in_a_layer() -> None:
    """A module left out of the layers would be free to import anything."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    named = {name for layer in layers for name in re.split(r"[:|]", layer.replace(" ", ""))}
    modules = {
        f"streams.{path.stem}"
        for path in (ROOT / "streams").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    assert modules - named == set()
