"""DVC stage `download@<key>`: see agman.pipeline.download.

    python -m stages.download <key>      # a table slot: fashionai, deepfashion or zappos
"""

from agman.pipeline import download
from agman.pipeline.entry import stage_main

if __name__ == "__main__":
    stage_main(download.run, __doc__)
