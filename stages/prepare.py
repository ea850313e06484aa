"""DVC stage `prepare@<slot>`: see agman.pipeline for what it reads and writes.

    python -m stages.prepare <slot>      # slot: fashionai, deepfashion or zappos
"""

from agman import pipeline


def main(argv: list[str] | None = None) -> None:
    pipeline.stage_main(pipeline.run_prepare, __doc__, argv)


if __name__ == "__main__":
    main()
