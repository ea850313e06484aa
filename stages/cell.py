"""DVC stage `cell@<key>`: see agman.pipeline.cell.

    python -m stages.cell <key>      # a key of `cells` in params.yaml, e.g. fashionai-agman
"""

from agman.pipeline import cell
from agman.pipeline.entry import stage_main

if __name__ == "__main__":
    stage_main(cell.run, __doc__)
