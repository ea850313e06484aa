"""DVC stage `figures`: Figures 5-8 of the paper and each slot's validation curves (see
agman.pipeline.run_figures and agman.reports.figures)."""

from agman import pipeline
from agman.config import load_config


def main() -> None:
    pipeline.setup_logging()
    pipeline.run_figures(load_config())


if __name__ == "__main__":
    main()
