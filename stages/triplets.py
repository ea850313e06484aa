"""DVC stage `triplets@<key>`: see agman.pipeline.triplets.

    python -m stages.triplets <key>      # a table slot: fashionai, deepfashion or zappos
"""

from agman.pipeline import triplets
from agman.pipeline.entry import stage_main

if __name__ == "__main__":
    stage_main(triplets.run, __doc__)
