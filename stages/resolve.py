"""DVC stage `resolve`: see agman.pipeline.resolve.

    python -m stages.resolve
"""

from agman.pipeline import resolve
from agman.pipeline.entry import one_line_errors, setup_logging

if __name__ == "__main__":
    setup_logging()
    with one_line_errors():
        resolve.run()
