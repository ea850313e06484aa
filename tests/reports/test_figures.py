"""The figures stage on tiny trained runs: every figure is a PNG of the size its layout gives
(so it holds the rows and columns expected), variants without a run are left out, a missing
AG-MAN run fails naming the checkpoint and the stage, figures repeat exactly for a seed, and
the PNGs are logged to an MLflow run tagged stage=figures."""

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from agman.config import CellConfig, Config, DataConfig, TrainConfig
from agman.data.demo.zappos import write_demo_zappos
from agman.data.prepared import cache_prepared, read_prepared
from agman.data.registry import read_dataset
from agman.data.triplets import take_listed_triplets
from agman.inference import load_trained
from agman.pipeline import figures as figures_stage
from agman.reports.figures.layout import CURVES_SIZE, DPI, attention_grid, ranking_grid, retrieval_grid, triplet_grid
from agman.reports.figures.ranking import ranking_comparison
from agman.reports.figures.triplets import triplet_examples

CELLS = {f"fashionai-{v}": CellConfig("fashionai", v) for v in ("agman", "csn", "asenet_v2")} | \
    {"deepfashion-agman": CellConfig("deepfashion", "agman")}


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
        return image.size


def test_stage_draws_every_figure_of_a_slot_and_logs_them(tiny_project, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_project)
    monkeypatch.delenv("AGMAN_NO_MLFLOW", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    # asenet_v2 is a cell without a run: Figure 6 and the curves leave it out.
    pngs = figures_stage.run(Config(cells=CELLS, train=TrainConfig(device="cpu")), slots=["fashionai"])

    names = {p.name: p for p in pngs}
    assert sorted(names) == ["curves_fashionai.png", "fig5_retrieval_fashionai.png", "fig6_ranking_fashionai.png",
                             "fig7_attention_fashionai.png"]
    assert all(p.parent.as_posix() == "reports/figures" for p in pngs)
    assert png_size(names["fig5_retrieval_fashionai.png"]) == retrieval_grid(4, 10).pixels  # a query per type
    assert png_size(names["fig6_ranking_fashionai.png"]) == ranking_grid(2, 10).pixels  # AG-MAN and CSN
    assert png_size(names["fig7_attention_fashionai.png"]) == attention_grid(4, 4).pixels
    assert png_size(names["curves_fashionai.png"]) == (round(CURVES_SIZE[0] * DPI), round(CURVES_SIZE[1] * DPI))

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("agman-demo").experiment_id], "tags.stage = 'figures'")
    assert len(runs) == 1 and runs[0].info.run_name == "figures"
    assert sorted(a.path for a in client.list_artifacts(runs[0].info.run_id)) == sorted(names)


def test_missing_agman_run_names_the_checkpoint_and_the_stage(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    monkeypatch.setenv("AGMAN_NO_MLFLOW", "1")
    before = sorted(tiny_project.rglob("*.png"))
    with pytest.raises(FileNotFoundError) as err:
        figures_stage.run(Config(cells=CELLS, train=TrainConfig(device="cpu")), slots=["fashionai", "deepfashion"])
    assert "runs/deepfashion/agman/seed0/best.pt" in str(err.value)
    assert "dvc repro cell@deepfashion-agman" in str(err.value)
    assert sorted(tiny_project.rglob("*.png")) == before  # checked before anything is drawn


def test_figures_repeat_exactly_for_a_seed(tiny_project, tmp_path):
    data = read_prepared(tiny_project / "data" / "fashionai" / "cache")
    model = load_trained(tiny_project / "runs" / "fashionai" / "agman" / "seed0", "cpu")
    first = ranking_comparison({"AG-MAN": model}, data, "seed 0", tmp_path / "a.png", seed=0)
    again = ranking_comparison({"AG-MAN": model}, data, "seed 0", tmp_path / "b.png", seed=0)
    assert first.read_bytes() == again.read_bytes()


@pytest.fixture(scope="module")
def zappos(tmp_path_factory, tiny_trainer):
    """The demo Zappos50k (60 images, CSN-style lists) through the cache stage, and a tiny AG-MAN run."""
    folder = tmp_path_factory.mktemp("zappos")
    root = folder / "raw"
    write_demo_zappos(root, 60, (16, 8, 8), 32, seed=0)
    data = cache_prepared(read_dataset(DataConfig(dataset="demo_zappos", root=str(root))), root,
                          folder / "cache", 32, fmt="array")
    run = tiny_trainer(data, root, folder / "run", folder / "curves.csv",
                         triplets=take_listed_triplets(data.triplets["train"], 16, seed=0, epoch=0))
    return data, load_trained(run, "cpu")


def test_triplet_figure(zappos, tmp_path):
    data, model = zappos
    png = triplet_examples(model, data, "demo Zappos50k", tmp_path / "fig8.png", seed=0, per_condition=2)
    assert png_size(png) == triplet_grid(4, 2).pixels  # four conditions, two triplets each


def test_figure5_frames_same_value_candidates_black_and_others_red_in_similarity_order(tiny_project, tmp_path,
                                                                                         monkeypatch):
    from agman.reports.figures import retrieval as retrieval_module

    data = read_prepared(tiny_project / "data" / "fashionai" / "cache")
    trained = load_trained(tiny_project / "runs" / "fashionai" / "agman" / "seed0", "cpu")
    tiles = []
    real_draw = retrieval_module.draw_tile

    def recording(ax, pixels, frame=None, caption="", *args, **kwargs):
        tiles.append((frame, caption))
        return real_draw(ax, pixels, frame, caption, *args, **kwargs)

    monkeypatch.setattr(retrieval_module, "draw_tile", recording)
    retrieval_module.retrieval_examples(trained, data, "test", tmp_path / "fig5.png")
    rows, frames = [], set()
    for frame, caption in tiles:
        if caption.startswith("query: "):
            rows.append((caption.removeprefix("query: "), []))
            continue
        value, sim = caption.rsplit("\nsim ", 1)
        rows[-1][1].append(float(sim))
        assert frame == ("black" if value == rows[-1][0] else "red"), (rows[-1][0], caption, frame)
        frames.add(frame)
    assert len(rows) == len(data.attributes) and all(5 <= len(sims) <= 10 for _, sims in rows)
    for _, sims in rows:
        assert sims == sorted(sims, reverse=True)  # rank 1 is the most similar candidate
    assert frames == {"black", "red"}  # both cases drawn, so the check above is not vacuous
