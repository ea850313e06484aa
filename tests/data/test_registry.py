"""The ``data.dataset`` names (agman.data.registry): what each is, reading and obtaining through them,
and the import rules of agman.data (no cycles; real-data modules never import demo code)."""

from __future__ import annotations

import ast
import json
from dataclasses import FrozenInstanceError, asdict, replace
from pathlib import Path

import pytest

from agman.config import DataConfig, SplitConfig
from agman.data import deepfashion, fashionai, registry, zappos
from agman.data.acquire import images_sha256
from agman.data.demo import fashionai as demo_fashionai
from agman.data.demo.zappos import write_demo_zappos
from agman.data.errors import MissingDataError
from agman.data.registry import DATASET_NAMES, DatasetSpec, dataset_attributes, dataset_spec, obtain, read_dataset
from agman.data.zappos import read_zappos

DATA_PACKAGE = Path(registry.__file__).parent
EXPECTED = {  # name: (kind, demo, task)
    "fashionai": ("fashionai", False, "retrieval"),
    "deepfashion": ("deepfashion", False, "retrieval"),
    "zappos": ("zappos", False, "triplets"),
    "demo_fashionai": ("fashionai", True, "retrieval"),
    "demo_deepfashion": ("deepfashion", True, "retrieval"),
    "demo_zappos": ("zappos", True, "triplets"),
}


def test_every_name_resolves_to_its_kind_demo_and_task():
    assert DATASET_NAMES == tuple(EXPECTED)
    for name, (kind, demo, task) in EXPECTED.items():
        spec = dataset_spec(name)
        assert isinstance(spec, DatasetSpec) and spec.name == name
        assert (spec.kind, spec.demo, spec.task) == (kind, demo, task)
        assert spec.default_root == (f"data/demo/{kind}" if demo else f"data/raw/{kind}")
        assert spec.layout is {"fashionai": fashionai, "deepfashion": deepfashion, "zappos": zappos}[kind].ACQUIRE
        assert spec.layout.dataset == kind and (spec.layout.manual is None) == (kind == "zappos")
    with pytest.raises(FrozenInstanceError):
        dataset_spec("zappos").name = "other"


def test_unknown_name_says_data_dataset_and_the_known_names():
    with pytest.raises(KeyError) as info:
        dataset_spec("imagenet")
    message = info.value.args[0]
    assert message == ("data.dataset: unknown dataset 'imagenet' (known: fashionai, deepfashion, zappos, "
                       "demo_fashionai, demo_deepfashion, demo_zappos)")
    assert "\n" not in message
    with pytest.raises(KeyError, match="data.dataset: unknown dataset 'nope'"):
        read_dataset(DataConfig(dataset="nope"))


def test_attribute_lists():
    assert dataset_attributes("fashionai") is fashionai.FASHIONAI
    assert dataset_attributes("demo_fashionai") == demo_fashionai.ATTRIBUTES
    assert [a.name for a in dataset_attributes("demo_fashionai")] == [
        name for name, _ in demo_fashionai.DEMO_FASHIONAI_ATTRIBUTES]
    for name in ("deepfashion", "demo_deepfashion", "zappos", "demo_zappos"):
        with pytest.raises(KeyError, match=f"data.dataset: {name} has no fixed attribute list"):
            dataset_attributes(name)
    with pytest.raises(KeyError, match="data.dataset"):
        dataset_attributes("nope")


@pytest.mark.parametrize("dataset, method, message", [
    ("demo_deepfashion", "asen", "asen is FashionAI's published split; data.dataset is 'demo_deepfashion'"),
    ("deepfashion", "asen", "asen is FashionAI's published split; data.dataset is 'deepfashion'"),
    ("demo_fashionai", "official", "official is DeepFashion's evaluation partition; data.dataset is 'demo_fashionai'"),
    ("fashionai", "official", "official is DeepFashion's evaluation partition; data.dataset is 'fashionai'"),
])
def test_split_methods_belong_to_their_dataset(dataset, method, message):
    with pytest.raises(ValueError, match=message):  # before anything is read: root does not exist
        read_dataset(DataConfig(dataset=dataset, root="nowhere", split=SplitConfig(method=method)))


def test_demo_fashionai_reads_with_the_stand_ins_attributes(demo_root):
    data = read_dataset(DataConfig(dataset="demo_fashionai", root=str(demo_root), split=SplitConfig(seed=1)))
    assert data.task == "retrieval" and data.attributes == [a.name for a in demo_fashionai.ATTRIBUTES]
    assert data.meta["dataset"] == "demo_fashionai" and len(data.table) == 24 * len(data.attributes)


def test_obtain_renders_a_stand_in_and_describes_it(tmp_path):
    root = tmp_path / "zappos"
    demo = replace(DataConfig().demo, zappos_images=60, zappos_triplets=20, render_size=24, seed=3)
    data = DataConfig(dataset="demo_zappos", root=str(root), demo=demo)
    record = obtain(data)
    assert record["dataset"] == "zappos" and record["images"]["count"] == 60 and record["root"] == root.as_posix()
    assert record["demo"] == asdict(data.demo) and record["images_sha256"] == images_sha256(zappos.ACQUIRE, root)
    json.dumps(record)  # the manifest is written as JSON
    # The writer's arguments: CSN's proportions of training lines for val and test.
    reference = tmp_path / "reference"
    write_demo_zappos(reference, 60, (20, 2, 4), 24, seed=3)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == \
        sorted(p.relative_to(reference).as_posix() for p in reference.rglob("*") if p.is_file())
    assert all((root / p.relative_to(reference)).read_bytes() == p.read_bytes() for p in reference.rglob("*")
               if p.is_file())
    prepared = read_dataset(data)
    _, triplets, _ = read_zappos(root)
    assert prepared.task == "triplets" and len(prepared.triplets["valid"]) == len(triplets["val"]) == 4 * 2


def test_obtain_a_missing_manual_dataset_says_what_to_do(tmp_path):
    with pytest.raises(MissingDataError, match="list_attr_img.txt"):
        obtain(DataConfig(dataset="deepfashion", root=str(tmp_path / "deepfashion")))


# ------------------------------------------------------------------------------------------------
# The import rules of agman.data


def _modules() -> dict[str, set[str]]:
    """Each module of agman.data -> the agman.data modules it imports (at any level)."""
    modules = {}
    for path in sorted(DATA_PACKAGE.rglob("*.py")):
        parts = path.relative_to(DATA_PACKAGE.parent.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    imports = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        imports[name] = {m for m in found if m in modules and m != name}
    return imports


def test_no_real_data_module_imports_demo_code_and_the_machinery_no_dataset():
    imports = _modules()
    real = [m for m in imports if not m.startswith("agman.data.demo") and m != "agman.data.registry"]
    for module in real:
        assert not {m for m in imports[module] if m.startswith("agman.data.demo")}, module
    datasets = {"agman.data.fashionai", "agman.data.deepfashion", "agman.data.zappos"}
    for module in ("agman.data.acquire", "agman.data.download", "agman.data.split", "agman.data.prepared"):
        assert not imports[module] & datasets, module


def test_agman_data_has_no_import_cycle():
    imports = _modules()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join(path + (module,))
        if module in done:
            return
        for target in imports[module]:
            visit(target, path + (module,))
        done.add(module)

    for module in imports:
        visit(module, ())
