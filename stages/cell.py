"""DVC stage `cell@<cell>`: train and evaluate one table cell; see agman.pipeline.

    python -m stages.cell <cell>      # a key of `cells` in params.yaml, e.g. fashionai-agman
"""

import sys

from agman import pipeline
from agman.config import load_config


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit(__doc__)
    pipeline.setup_logging()
    pipeline.run_cell(load_config(), args[0])


if __name__ == "__main__":
    main()
