"""DVC stage `figures`: see agman.pipeline.figures.

    python -m stages.figures
"""

from agman.pipeline import figures
from agman.pipeline.entry import global_main

if __name__ == "__main__":
    global_main(figures.run)
