"""AG-MAN and its parts, one module per component of the paper (Sec. III)."""

from agman.models.registry import available_models, build_model

__all__ = ["available_models", "build_model"]
