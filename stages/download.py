"""DVC stage `download`: see agman.pipeline for what it reads and writes."""

from agman import pipeline
from agman.config import load_config


def main() -> None:
    pipeline.setup_logging()
    pipeline.run_download(load_config())


if __name__ == "__main__":
    main()
