"""AG-MAN, its parts (one module per component of the paper, Sec. III) and the baselines."""

from agman.models.registry import available_models, build_model, model_params, trains_classification

__all__ = ["available_models", "build_model", "model_params", "trains_classification"]
