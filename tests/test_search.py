"""`agman search`: the query's own copy ranks first, gallery embeddings are computed once and
reused (counted in model forwards), and bad input fails with a message naming the cause."""

import shutil

import pandas as pd
import pytest
from PIL import Image

from agman import cli
from agman.inference import load_trained
from agman.models.agman import AGMAN
from agman.reports.figures.layout import search_grid_layout
from agman.search import FolderGallery, search


@pytest.fixture
def forwards(monkeypatch):
    """How many times any AG-MAN network has run forward since the test began."""
    calls = {"n": 0}
    real = AGMAN.forward

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AGMAN, "forward", counting)
    return calls


@pytest.fixture
def demo_images(tiny_project):
    return tiny_project / "data" / "demo" / "fashionai"


@pytest.fixture
def run_dir(tiny_project, tmp_path):
    """A private copy of the AG-MAN run, so each test starts with no search cache."""
    return shutil.copytree(tiny_project / "runs" / "fashionai" / "agman" / "seed0", tmp_path / "run")


def test_query_ranks_first_and_gallery_embeddings_are_reused(demo_images, run_dir, tmp_path, forwards):
    gallery_dir = tmp_path / "gallery"
    gallery_dir.mkdir()
    images = sorted((demo_images / "Images" / "texture_labels").glob("*.jpg"))[:12]
    for path in images:
        shutil.copy(path, gallery_dir / path.name)
    query = images[5]

    first = search(load_trained(run_dir, "cpu"), query, "texture", FolderGallery(gallery_dir, 32), top=5)
    assert not first.cache_hit
    assert forwards["n"] == 2  # one batch of 12 gallery images, then the query
    assert first.matches[0].item.name == query.name
    assert first.matches[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert [m.rank for m in first.matches] == [1, 2, 3, 4, 5]
    assert first.cache_file.is_file() and first.cache_file.parent == run_dir / "search_cache"

    forwards["n"] = 0
    # A new process would load the checkpoint again: the cache must be found from its content.
    second = search(load_trained(run_dir, "cpu"), query, "texture", FolderGallery(gallery_dir, 32), top=5)
    assert second.cache_hit and second.cache_file == first.cache_file
    assert forwards["n"] == 1  # the query only
    assert [(m.item.name, m.similarity) for m in second.matches] == [(m.item.name, m.similarity)
                                                                      for m in first.matches]

    forwards["n"] = 0
    other = search(load_trained(run_dir, "cpu"), query, "skirt_length", FolderGallery(gallery_dir, 32), top=5)
    assert not other.cache_hit and forwards["n"] == 2  # embeddings depend on the attribute


def test_cli_searches_the_runs_own_test_split_and_writes_the_grid(tiny_project, demo_images, tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.chdir(tiny_project)  # the default gallery is found from runs/<slot>/... -> data/<slot>/cache
    table = pd.read_csv(tiny_project / "data" / "fashionai" / "cache" / "items.csv")
    row = table[(table["split"] == "test") & (table["attribute"] == "neckline_design")].iloc[0]
    image = demo_images / row["path"]
    out = tmp_path / "grid.png"
    cli.main(["search", "--run", "runs/fashionai/agman/seed0", "--image", str(image), "--attribute",
              "neckline_design", "--top", "4", "--out", str(out), "--device", "cpu"])
    printed = capsys.readouterr().out
    ranks = [line.split() for line in printed.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in ranks] == ["1", "2", "3", "4"] and ranks[0][2] == row["path"]
    assert "data/fashionai/cache:test" in printed and f"grid image: {out}" in printed
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size == search_grid_layout(4).pixels


def test_unknown_attribute_lists_the_valid_ones(run_dir, demo_images, capsys):
    image = next((demo_images / "Images").rglob("*.jpg"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["search", "--run", str(run_dir), "--image", str(image), "--attribute", "collar", "--gallery",
                  str(image.parent), "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown attribute 'collar'" in err
    for name in ("sleeve_length", "skirt_length", "neckline_design", "texture"):
        assert name in err


@pytest.mark.parametrize("content", [b"not a jpeg at all", None], ids=["corrupt", "missing"])
def test_unreadable_image_names_the_file(run_dir, demo_images, tmp_path, capsys, forwards, content):
    image = tmp_path / "query.jpg"
    if content is not None:
        image.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["search", "--run", str(run_dir), "--image", str(image), "--attribute", "texture", "--gallery",
                  str(next((demo_images / "Images").rglob("*.jpg")).parent), "--device", "cpu"])
    assert exit_info.value.code == 2
    assert str(image) in capsys.readouterr().err
    assert forwards["n"] == 0  # the query is read before any gallery image is embedded
