"""DVC stage `cache@<key>`: see agman.pipeline.cache.

    python -m stages.cache <key>      # a table slot: fashionai, deepfashion or zappos
"""

from agman.pipeline import cache
from agman.pipeline.entry import stage_main

if __name__ == "__main__":
    stage_main(cache.run, __doc__)
