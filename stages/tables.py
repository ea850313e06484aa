"""DVC stage `tables`: see agman.pipeline.tables.

    python -m stages.tables
"""

from agman.pipeline import tables
from agman.pipeline.entry import global_main

if __name__ == "__main__":
    global_main(tables.run)
