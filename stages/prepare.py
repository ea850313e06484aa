"""DVC stage `prepare@<key>`: see agman.pipeline.prepare.

    python -m stages.prepare <key>      # a table slot: fashionai, deepfashion or zappos
"""

from agman.pipeline import prepare
from agman.pipeline.entry import stage_main

if __name__ == "__main__":
    stage_main(prepare.run, __doc__)
