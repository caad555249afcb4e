"""Allow ``python -m lifecycle``."""

from lifecycle.cli import entry

entry()
