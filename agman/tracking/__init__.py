"""MLflow tracking of training and evaluation runs."""

from agman.tracking.mlflow_run import MlflowRun, project_root, tracking_uri

__all__ = ["MlflowRun", "project_root", "tracking_uri"]
