"""The download stage's machinery (agman.data.acquire) carrying out each dataset's acquisition
spec (``ACQUIRE`` of agman.data.fashionai, .deepfashion, .zappos) on tiny zips built here; Zappos is
served from 127.0.0.1 only."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import pytest

from agman.data import acquire as acq
from agman.data import deepfashion, fashionai, zappos
from agman.data.acquire import acquire, check_layout, images_sha256, manifest
from agman.data.download import ChecksumError
from agman.data.errors import ArchiveError, MissingDataError
from agman.data.zappos import CONDITION_NAMES, SPLITS
from tests.loopback import LoopbackServer

ZAPPOS, FASHIONAI, DEEPFASHION = zappos.ACQUIRE, fashionai.ACQUIRE, deepfashion.ACQUIRE


def make_zip(path: Path, members: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def zappos_zips(folder: Path) -> dict[str, bytes]:
    """The three Zappos archives; the CSN one keeps its files under a subfolder, beside junk."""
    folder.mkdir()
    images = make_zip(folder / "images.zip", {
        "ut-zap50k-images/Shoes/Oxfords/Brand A/1.jpg": b"jpg-one",
        "ut-zap50k-images/Boots/Ankle/Brand B/2.jpg": b"jpg-two!",
    })
    data = make_zip(folder / "data.zip", {"ut-zap50k-data/meta-data.csv": "CID,Category\n1,Shoes\n"})
    lists = {f"csn_zappos_triplets/tripletlists/{c}_tripletlist_{s}.txt": "0 1 0\n"
             for c in CONDITION_NAMES for s in SPLITS}
    csn = make_zip(folder / "csn.zip", {
        "csn_zappos_triplets/filenames.json": "Shoes/Oxfords/Brand A/1.jpg\nBoots/Ankle/Brand B/2.jpg\n",
        **lists,
        "__MACOSX/csn_zappos_triplets/tripletlists/._class_tripletlist_train.txt": b"\x00",
    })
    return {"ut-zap50k-images.zip": images.read_bytes(), "ut-zap50k-data.zip": data.read_bytes(),
            "csn_zappos_triplets.zip": csn.read_bytes()}


@pytest.fixture()
def zappos_server(tmp_path):
    with LoopbackServer(zappos_zips(tmp_path / "served")) as served:
        yield served


def test_zappos_end_to_end(zappos_server, tmp_path, monkeypatch):
    root = tmp_path / "zappos"
    result = acquire(ZAPPOS, root, urls=zappos_server.urls)
    assert (root / "ut-zap50k-images/Shoes/Oxfords/Brand A/1.jpg").read_bytes() == b"jpg-one"
    assert (root / "ut-zap50k-data/meta-data.csv").read_text().startswith("CID,Category")
    assert (root / "filenames.json").read_text().splitlines()[1] == "Boots/Ankle/Brand B/2.jpg"
    assert sorted(p.name for p in (root / "tripletlists").iterdir()) == sorted(
        f"{c}_tripletlist_{s}.txt" for c in CONDITION_NAMES for s in SPLITS)
    assert not list(root.glob(".acquire-staging-*"))
    for name in zappos.URLS:
        record = json.loads((root / "archives" / f"{name}.sha256").read_text())
        assert record["size"] == len(zappos_server.files[name])
    assert result["images"] == {"bytes": len(b"jpg-one") + len(b"jpg-two!"), "count": 2,
                                "folder": "ut-zap50k-images"}
    assert set(result["archives"]) == set(zappos.URLS)
    assert len(zappos_server.requests) == 3
    marker = (root / acq.MARKER).read_text()
    assert set(json.loads(marker)["parts"]) == {"images", "metadata", "csn"}

    def no_extraction(*args):
        raise AssertionError("extracted again")

    monkeypatch.setattr(acq, "_extract_zip", no_extraction)
    assert acquire(ZAPPOS, root, urls=zappos_server.urls) == result
    assert len(zappos_server.requests) == 3 and (root / acq.MARKER).read_text() == marker

    with (root / "archives" / "ut-zap50k-data.zip").open("ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ChecksumError, match="ut-zap50k-data.zip"):
        acquire(ZAPPOS, root, urls=zappos_server.urls)


def test_zappos_reextracts_only_the_missing_part(zappos_server, tmp_path, monkeypatch):
    root = tmp_path / "zappos"
    acquire(ZAPPOS, root, urls=zappos_server.urls)
    (root / "tripletlists" / "heel_tripletlist_test.txt").unlink()
    extracted = []
    real = acq._extract_zip

    def counting(archive, *rest):
        extracted.append(archive.name)
        real(archive, *rest)

    monkeypatch.setattr(acq, "_extract_zip", counting)
    acquire(ZAPPOS, root, urls=zappos_server.urls)
    assert extracted == ["csn_zappos_triplets.zip"] and len(zappos_server.requests) == 3
    check_layout(ZAPPOS, root)


def test_zappos_corrupt_download_says_delete(zappos_server, tmp_path):
    zappos_server.files["ut-zap50k-data.zip"] = b"this is not a zip"
    with pytest.raises(ArchiveError, match=r"ut-zap50k-data.zip: not a readable zip.*delete it"):
        acquire(ZAPPOS, tmp_path / "zappos", urls=zappos_server.urls)


def fashionai_archive(path: Path, top: str, images: dict[str, bytes], labels: list[str]) -> Path:
    members = {f"{top}/Images/{rel}": data for rel, data in images.items()}
    members[f"{top}/Annotations/label.csv"] = "".join(line + "\n" for line in labels)
    members[f"{top}/README.txt"] = "not part of the layout"
    return make_zip(path, members)


ROW_A = "Images/coat_length_labels/a.jpg,coat_length_labels,nnynnnnn"
ROW_B = "Images/skirt_length_labels/b.jpg,skirt_length_labels,ynnnnn"
ROW_C = "Images/coat_length_labels/c.jpg,coat_length_labels,nnnnnnny"


def test_fashionai_merges_two_archives(tmp_path, caplog):
    root = tmp_path / "fashionai"
    root.mkdir()
    fashionai_archive(root / "fashionAI_attributes_train1.zip", "base",
                      {"coat_length_labels/a.jpg": b"A", "skirt_length_labels/b.jpg": b"BB"}, [ROW_A, ROW_B])
    fashionai_archive(root / "fashionAI_attributes_train2.zip", "web/train",
                      {"coat_length_labels/c.jpg": b"CCC", "skirt_length_labels/b.jpg": b"BB"}, [ROW_B, ROW_C])
    with caplog.at_level(logging.INFO, logger="agman.data.fashionai"):
        result = acquire(FASHIONAI, root)
    assert (root / "Annotations/label.csv").read_text().splitlines() == [ROW_A, ROW_B, ROW_C]
    assert sorted(p.relative_to(root / "Images").as_posix() for p in (root / "Images").rglob("*.jpg")) == [
        "coat_length_labels/a.jpg", "coat_length_labels/c.jpg", "skirt_length_labels/b.jpg"]
    assert "1 exact duplicate lines dropped, 3 rows written" in caplog.text
    assert result["images"]["count"] == 3 and set(result["archives"]) == {
        "fashionAI_attributes_train1.zip", "fashionAI_attributes_train2.zip"}
    assert (root / "fashionAI_attributes_train1.zip.sha256").is_file()


def test_fashionai_conflicting_images_are_refused(tmp_path):
    root = tmp_path / "fashionai"
    root.mkdir()
    fashionai_archive(root / "fashionAI_attributes_train1.zip", "a", {"coat_length_labels/a.jpg": b"A"}, [ROW_A])
    fashionai_archive(root / "fashionAI_attributes_train2.zip", "b", {"coat_length_labels/a.jpg": b"X"}, [ROW_A])
    with pytest.raises(ArchiveError, match="train2.zip: Images/coat_length_labels/a.jpg differs"):
        acquire(FASHIONAI, root)
    assert not (root / "Images").exists() and not list(root.glob(".acquire-staging-*"))


def test_fashionai_missing_archives_say_what_to_do(tmp_path):
    root = tmp_path / "fashionai"
    with pytest.raises(MissingDataError) as info:
        acquire(FASHIONAI, root)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for part in ("fashionAI_attributes_train1.zip", "fashionAI_attributes_train2.zip", fashionai.URL,
                 "sign-up required", str(root.resolve()), "dvc repro"):
        assert part in message


def test_fashionai_extracted_by_hand_is_accepted(tmp_path):
    root = tmp_path / "fashionai"
    (root / "Images/coat_length_labels").mkdir(parents=True)
    (root / "Images/coat_length_labels/a.jpg").write_bytes(b"A")
    (root / "Annotations").mkdir()
    (root / "Annotations/label.csv").write_text(ROW_A + "\n")
    result = acquire(FASHIONAI, root)
    assert result["archives"] == {} and result["images"]["count"] == 1
    assert not (root / acq.MARKER).exists()


def deepfashion_files(root: Path, skip: str = "", in_folders: bool = False) -> None:
    root.mkdir()
    make_zip(root / "img.zip", {"img/Sheer_Pleated-Front_Blouse/img_00000001.jpg": b"jpeg",
                                "img/Striped_Dress/img_00000002.jpg": b"jpeg2"})
    texts = {"list_attr_cloth.txt": "Anno", "list_attr_img.txt": "Anno", "list_eval_partition.txt": "Eval"}
    for name, folder in texts.items():
        if name != skip:
            dest = root / folder / name if in_folders else root / name
            dest.parent.mkdir(exist_ok=True)
            dest.write_text(f"1\nheader of {name}\n")


@pytest.mark.parametrize("in_folders", [False, True])
def test_deepfashion_arranged(tmp_path, in_folders):
    root = tmp_path / "deepfashion"
    deepfashion_files(root, in_folders=in_folders)
    result = acquire(DEEPFASHION, root)
    assert (root / "img/Striped_Dress/img_00000002.jpg").read_bytes() == b"jpeg2"
    assert (root / "Anno/list_attr_img.txt").read_text().startswith("1\nheader of list_attr_img.txt")
    assert (root / "Eval/list_eval_partition.txt").is_file() and not (root / "list_attr_cloth.txt").exists()
    assert result["images"]["count"] == 2 and list(result["archives"]) == ["img.zip"]
    assert sorted(result["files"]) == ["Anno/list_attr_cloth.txt", "Anno/list_attr_img.txt",
                                       "Eval/list_eval_partition.txt"]


def test_deepfashion_missing_file_is_named(tmp_path):
    root = tmp_path / "deepfashion"
    deepfashion_files(root, skip="list_attr_img.txt")
    with pytest.raises(MissingDataError) as info:
        acquire(DEEPFASHION, root)
    message = str(info.value)
    listed = message.split("Missing files:\n")[1].split("\nGet them")[0]
    assert "list_attr_img.txt" in listed and "list_attr_cloth.txt" not in listed and "img.zip" not in listed
    assert deepfashion.URL in message and "sign-up required" in message and "dvc repro" in message
    assert (root / "list_attr_cloth.txt").is_file() and not (root / "img").exists()  # nothing touched


def test_manual_archive_changed_after_its_record(tmp_path):
    root = tmp_path / "deepfashion"
    deepfashion_files(root)
    acquire(DEEPFASHION, root)
    make_zip(root / "img.zip", {"img/Other/img_00000003.jpg": b"other"})
    with pytest.raises(ChecksumError, match="img.zip.*delete img.zip.sha256"):
        acquire(DEEPFASHION, root)


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "img/../../evil.txt"])
def test_zip_slip_member_rejected(tmp_path, member):
    root = tmp_path / "deepfashion"
    deepfashion_files(root)
    make_zip(root / "img.zip", {"img/A/img_00000001.jpg": b"jpeg", member: b"evil"})
    with pytest.raises(ArchiveError, match=rf"img.zip: member '{member}'"):
        acquire(DEEPFASHION, root)
    assert not (tmp_path / "evil.txt").exists() and not (root / "img").exists()
    assert not list(root.glob(".acquire-staging-*"))


def test_corrupt_manual_zip_is_named(tmp_path):
    root = tmp_path / "deepfashion"
    deepfashion_files(root)
    (root / "img.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArchiveError, match=r"img.zip: not a readable zip.*replace it"):
        acquire(DEEPFASHION, root)


def test_manifest_deterministic_and_layout_checked(tmp_path):
    root = tmp_path / "deepfashion"
    deepfashion_files(root)
    first = acquire(DEEPFASHION, root)
    again = manifest(DEEPFASHION, root)
    assert again == first and json.dumps(again) == json.dumps(first)
    assert list(first) == sorted(first) and first["root"] == root.as_posix()
    assert first["images"] == {"bytes": len(b"jpeg") + len(b"jpeg2"), "count": 2, "folder": "img"}
    (root / "Eval/list_eval_partition.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt: required file is missing"):
        check_layout(DEEPFASHION, root)


def test_urls_only_for_an_automatic_download(tmp_path):
    with pytest.raises(ValueError, match="deepfashion cannot be downloaded automatically"):
        acquire(DEEPFASHION, tmp_path, urls={"img.zip": "http://127.0.0.1:1/img.zip"})


def test_images_sha256_follows_paths_and_pixels(tmp_path):
    root = tmp_path / "deepfashion"
    deepfashion_files(root)
    acquire(DEEPFASHION, root)
    first = images_sha256(DEEPFASHION, root)
    assert images_sha256(DEEPFASHION, root) == first
    (root / "img/Striped_Dress/img_00000002.jpg").write_bytes(b"jpeg3")
    assert images_sha256(DEEPFASHION, root) != first

