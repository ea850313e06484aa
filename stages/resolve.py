"""DVC stage `resolve`: see agman.pipeline for what it reads and writes."""

from agman import pipeline


def main() -> None:
    pipeline.setup_logging()
    pipeline.run_resolve()


if __name__ == "__main__":
    main()
