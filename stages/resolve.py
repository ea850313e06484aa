"""DVC stage `resolve`: see agman.pipeline.resolve.

    python -m stages.resolve
"""

from agman.pipeline import resolve
from agman.pipeline.entry import setup_logging

if __name__ == "__main__":
    setup_logging()
    resolve.run()
