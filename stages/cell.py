"""DVC stage `cell@<cell>`: train and evaluate one table cell; see agman.pipeline.

    python -m stages.cell <cell>      # a key of `cells` in params.yaml, e.g. fashionai-agman
"""

from agman import pipeline


def main(argv: list[str] | None = None) -> None:
    pipeline.stage_main(pipeline.run_cell, __doc__, argv)


if __name__ == "__main__":
    main()
