import multiprocessing
import os

from agman.tracking.mlflow_run import MlflowRun, experiment_name, project_root, system_metrics, tracking_uri


def test_tracking_uri_is_absolute_under_dvc_root(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert project_root() == tmp_path.resolve()
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"


def test_tracking_uri_env_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking_uri() == "http://mlflow.example:5000"


def test_project_root_without_dvc_root_finds_dot_dvc(monkeypatch, tmp_path):
    monkeypatch.delenv("DVC_ROOT", raising=False)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "sub" / "deeper")
    assert project_root() == tmp_path.resolve()


def test_each_profile_has_its_own_experiment(monkeypatch):
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    assert [experiment_name(p) for p in ("demo", "paper", "ci")] == ["agman-demo", "agman-paper", "agman-ci"]


def test_mlflow_experiment_name_overrides_the_profiles_experiment(monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "team-sweep")
    assert experiment_name("paper") == "team-sweep"


def test_system_metrics_are_sampled_on_cuda_only_unless_mlflows_switch_is_set(monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", raising=False)
    assert system_metrics(on_cuda=True) is True and system_metrics(on_cuda=False) is False
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    assert system_metrics(on_cuda=False) is None  # None: MLflow reads its own switch


def _start_run_at_once(barrier, root, index, results) -> None:
    """One of several jobs creating a run in the same fresh SQLite store at the same moment."""
    os.environ["DVC_ROOT"] = root
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    barrier.wait()
    try:
        run = MlflowRun("train", {"job": index}, name=f"job {index}", profile="ci")
        run.log_metrics({"loss": 1.0}, step=1)
        run.end()
        results.put((index, "ok"))
    except Exception as err:  # reported, so the test names it
        results.put((index, f"{type(err).__name__}: {err}"[:300]))


def test_jobs_starting_together_on_a_fresh_store_all_log(tmp_path):
    """Without the store lock, MLflow's schema migration breaks when two processes run it at once
    (seen with `dvc queue start -j 2` on a new mlflow.db): every job here failed."""
    import mlflow  # noqa: F401  (imported before forking, so the jobs reach the store together)

    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(3), context.Queue()
    jobs = [context.Process(target=_start_run_at_once, args=(barrier, str(tmp_path), i, results)) for i in range(3)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=120)
    outcomes = dict(results.get(timeout=5) for _ in jobs)
    assert outcomes == {0: "ok", 1: "ok", 2: "ok"}, outcomes
    assert (tmp_path / "mlflow.db.lock").is_file()
