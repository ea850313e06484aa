"""``python -m agman ...``: the ``agman`` command without an installed entry point."""

from agman.cli import main

main()
