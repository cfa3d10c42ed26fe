"""The `zhian` commands: one module per command family, each adding its own sub-parser."""

from zhian.cli.main import main

__all__ = ["main"]
