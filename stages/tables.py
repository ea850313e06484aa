"""DVC stage `tables`: Tables 2-10 from every cell's report (see agman.reports.tables)."""

from agman import pipeline
from agman.config import load_config


def main() -> None:
    pipeline.setup_logging()
    pipeline.run_tables(load_config())


if __name__ == "__main__":
    main()
