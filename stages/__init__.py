"""The DVC stages' entry points: `python -m stages.<stage> [<key>]`, one thin module per stage over agman.pipeline."""
