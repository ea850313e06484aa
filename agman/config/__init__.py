"""One config tree of frozen dataclasses mirroring ``params.yaml`` (``schema``), read and checked
by ``load``. The per-slot and per-cell configs of the table matrix are the pipeline's
(``agman.pipeline.matrix``): they know the data registry, which the model and training code do not.
"""

from agman.config.load import (
                               CELL_KEYS,
                               PROTECTED_KEYS,
                               ConfigError,
                               fingerprint,
                               flatten,
                               from_dict,
                               load_config,
                               load_params,
                               merge,
                               resolve,
                               to_dict,
                               variant_model,
)
from agman.config.schema import (
                               AGAConfig,
                               CacheConfig,
                               CellConfig,
                               Config,
                               DataConfig,
                               DatasetSource,
                               DemoConfig,
                               EvalConfig,
                               FixedWeights,
                               LossConfig,
                               ModelConfig,
                               SplitConfig,
                               TrainConfig,
                               TripletsConfig,
)

__all__ = ["CELL_KEYS", "PROTECTED_KEYS", "AGAConfig", "CacheConfig", "CellConfig", "Config", "ConfigError",
           "DataConfig", "DatasetSource", "DemoConfig", "EvalConfig", "FixedWeights", "LossConfig", "ModelConfig",
           "SplitConfig", "TrainConfig", "TripletsConfig", "fingerprint", "flatten", "from_dict", "load_config",
           "load_params", "merge", "resolve", "to_dict", "variant_model"]
