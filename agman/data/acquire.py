"""The ``download`` stage's logic: get a real dataset into its genuine layout under ``data.root``.

``acquire(dataset, root)`` leaves the layout that the readers expect (REFERENCE.md section 4):

* ``zappos`` (automatic): the three archives are fetched into ``<root>/archives/`` with
  :func:`agman.data.download.fetch` (resumable, size and SHA-256 recorded then verified) and
  arranged as ``ut-zap50k-images/``, ``ut-zap50k-data/meta-data.csv``, ``filenames.json`` and
  ``tripletlists/``.
* ``fashionai`` and ``deepfashion`` (manual, sign-up required): the user places the release's
  files in ``root``; they are verified, extracted and arranged. When something is missing,
  :class:`MissingDataError` says which files, where to get them, where to put them and what to
  run afterwards.

The work is split into *parts*, each made from one or more archives and installing a few
top-level entries of ``root`` (e.g. the Zappos image zip installs ``ut-zap50k-images/``). A part is
extracted into a staging folder inside ``root``, its entries are renamed into place, and only then
is ``<root>/.acquired.json`` (the marker) rewritten to record the part's archives (size, SHA-256)
and entries, so an interrupted run never leaves a half-extracted entry that looks finished. A
part is left alone when its entries are complete and either the marker records the same
archives or there is no record at all (the user extracted it by hand); archives may be deleted
after extraction to save space. :func:`manifest` describes the result deterministically; the
stage writes it as its DVC output.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from agman.data import download
from agman.data.zappos import CONDITION_NAMES, SPLITS

log = logging.getLogger(__name__)

#: Where the Zappos archives are downloaded from, by archive file name.
ZAPPOS_URLS = {
    "ut-zap50k-images.zip": "http://vision.cs.utexas.edu/projects/finegrained/utzap50k/ut-zap50k-images.zip",
    "ut-zap50k-data.zip": "http://vision.cs.utexas.edu/projects/finegrained/utzap50k/ut-zap50k-data.zip",
    "csn_zappos_triplets.zip": "https://vision.cornell.edu/se3/wp-content/uploads/2019/05/csn_zappos_triplets.zip",
}
FASHIONAI_URL = "https://tianchi.aliyun.com/competition/entrance/231671/information"
DEEPFASHION_URL = "http://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/AttributePrediction.html"

MARKER = ".acquired.json"
STAGING_PREFIX = ".acquire-staging-"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
#: Folders that archivers add beside the real content (macOS resource forks); never a match.
JUNK_DIRS = frozenset({"__MACOSX"})


class MissingDataError(FileNotFoundError):
    """A manually downloaded dataset is not in place; the message says what to get and where."""


class ArchiveError(RuntimeError):
    """An archive cannot be used (unreadable, unsafe member, unexpected contents); names the archive."""


#: (archives as (path, extracted tree) pairs, a scratch folder) -> {root entry: staged path}.
Arranger = Callable[[Sequence[tuple[Path, Path]], Path], dict[str, Path]]


@dataclass(frozen=True)
class _Part:
    """Archives extracted together and the top-level entries of ``root`` they install."""

    name: str
    archives: tuple[str, ...]
    outputs: tuple[str, ...]
    arrange: Arranger


@dataclass(frozen=True)
class _Manual:
    """Where a manual dataset comes from, for :class:`MissingDataError` messages."""

    title: str
    url: str
    access: str
    origins: dict[str, str]  # file name -> where it sits in the release
    hint: str  # what else the user may do instead of placing the files


@dataclass(frozen=True)
class _Spec:
    """A dataset's final layout and how to produce it."""

    image_dir: str
    required: tuple[str, ...]  # paths relative to root; a trailing "/" means a non-empty folder
    archive_dir: str  # where the archives live, relative to root
    parts: tuple[_Part, ...]
    loose: tuple[tuple[str, str], ...] = ()  # (file name, folder it belongs in), moved as they are
    manual: _Manual | None = None
    urls: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# Zip extraction and locating content inside an extracted tree


def _check_member(archive: Path, name: str) -> None:
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
        raise ArchiveError(f"{archive}: member {name!r} has an absolute path or a '..' component; "
                           "refusing to extract it (this is not the expected release)")


def _extract_zip(archive: Path, dest: Path, advice: str) -> None:
    """Extract ``archive`` into ``dest`` after checking every member name (no zip slip)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:  # all names first: nothing is written from an unsafe archive
                _check_member(archive, info.filename)
            log.info("extracting %s (%d members)", archive, len(members))
            dest.mkdir(parents=True)  # exists even for an empty archive, so locating reports the absence
            zf.extractall(dest)
    except (zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise ArchiveError(f"{archive}: not a readable zip archive ({err}); {advice}") from None


def _subdirs(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False) and e.name not in JUNK_DIRS]


def _locate(tree: Path, anchor: str, archive: Path) -> Path:
    """The shallowest folder D inside ``tree`` holding ``D/anchor`` (a folder if it ends in "/").

    Searched level by level, so a large image tree is only walked when the anchor is absent.
    """
    rel = anchor.rstrip("/")
    wanted = Path.is_dir if anchor.endswith("/") else Path.is_file
    level = [tree]
    while level:
        hits = [d for d in level if wanted(d / rel)]
        if len(hits) > 1:
            where = ", ".join(str((d / rel).relative_to(tree)) for d in hits)
            raise ArchiveError(f"{archive}: {rel} found in several places ({where}); cannot tell which to use")
        if hits:
            return hits[0]
        level = sorted(sub for d in level for sub in _subdirs(d))
    raise ArchiveError(f"{archive}: holds no {anchor}; this is not the expected release")


def _arrange_anchored(anchors: tuple[tuple[str, str], ...], extracted: Sequence[tuple[Path, Path]],
                      _scratch: Path) -> dict[str, Path]:
    """One archive; each output is the folder/file found by its anchor, wherever it sits.

    Needs no scratch folder: everything is taken straight from the extracted tree.
    """
    ((archive, tree),) = extracted
    return {output: _locate(tree, anchor, archive) / output for output, anchor in anchors}


def _merge_tree(src: Path, dest: Path, archive: Path, first_archive: Path) -> int:
    """Move the files of ``src`` into ``dest``; returns how many were already there (identical)."""
    same = 0
    for folder, _, files in os.walk(src):
        target_dir = dest / Path(folder).relative_to(src)
        target_dir.mkdir(parents=True, exist_ok=True)
        for name in files:
            target = target_dir / name
            if target.exists():
                if not filecmp.cmp(Path(folder) / name, target, shallow=False):
                    raise ArchiveError(f"{archive}: {target.relative_to(dest.parent)} differs from the file of "
                                       f"the same name in {first_archive}; cannot merge them")
                same += 1
            else:
                os.replace(Path(folder) / name, target)
    return same


def _merge_fashionai(extracted: Sequence[tuple[Path, Path]], scratch: Path) -> dict[str, Path]:
    """Merge the FashionAI archives: Images trees united, label.csv rows concatenated in order.

    Exact duplicate label lines are dropped (the first occurrence is kept, so row order is that
    of the archives); images present in several archives must be identical.
    """
    images = scratch / "Images"
    label_csv = scratch / "Annotations" / "label.csv"
    rows: list[str] = []
    seen: set[str] = set()
    counts = []
    read = 0
    for archive, tree in extracted:
        base = _locate(tree, "Annotations/label.csv", archive)
        source_images = base / "Images"
        if not source_images.is_dir():
            raise ArchiveError(f"{archive}: no Images folder beside "
                               f"{(base / 'Annotations').relative_to(tree)}; this is not the expected release")
        if images.exists():
            same = _merge_tree(source_images, images, archive, extracted[0][0])
            if same:
                log.info("%s: %d images were already in an earlier archive (identical)", archive.name, same)
        else:
            os.replace(source_images, images)
        try:
            text = (base / "Annotations" / "label.csv").read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as err:
            raise ArchiveError(f"{archive}: {(base / 'Annotations' / 'label.csv').relative_to(tree)} "
                               f"is not UTF-8 text ({err})") from None
        lines = [line for line in text.splitlines() if line.strip()]
        for line in lines:
            if line not in seen:
                seen.add(line)
                rows.append(line)
        read += len(lines)
        counts.append(f"{len(lines)} from {archive.name}")
    label_csv.parent.mkdir(parents=True)
    label_csv.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    log.info("FashionAI label.csv: %s; %d exact duplicate lines dropped, %d rows written",
             " + ".join(counts), read - len(rows), len(rows))
    return {"Images": images, "Annotations": label_csv.parent}


# ------------------------------------------------------------------------------------------------
# The datasets


def _anchored(*anchors: tuple[str, str]) -> Arranger:
    return partial(_arrange_anchored, anchors)


SPECS: dict[str, _Spec] = {
    "zappos": _Spec(
        image_dir="ut-zap50k-images",
        required=("ut-zap50k-images/", "ut-zap50k-data/meta-data.csv", "filenames.json",
                  *(f"tripletlists/{c}_tripletlist_{s}.txt" for c in CONDITION_NAMES for s in SPLITS)),
        archive_dir="archives",
        parts=(
            _Part("images", ("ut-zap50k-images.zip",), ("ut-zap50k-images",),
                  _anchored(("ut-zap50k-images", "ut-zap50k-images/"))),
            _Part("metadata", ("ut-zap50k-data.zip",), ("ut-zap50k-data",),
                  _anchored(("ut-zap50k-data", "ut-zap50k-data/meta-data.csv"))),
            # Whether the CSN zip has a top folder is unknown: each piece is located on its own.
            _Part("csn", ("csn_zappos_triplets.zip",), ("filenames.json", "tripletlists"),
                  _anchored(("filenames.json", "filenames.json"),
                            ("tripletlists", f"tripletlists/{CONDITION_NAMES[0]}_tripletlist_{SPLITS[0]}.txt"))),
        ),
        urls=ZAPPOS_URLS,
    ),
    "fashionai": _Spec(
        image_dir="Images",
        required=("Images/", "Annotations/label.csv"),
        archive_dir="",
        parts=(_Part("attributes", ("fashionAI_attributes_train1.zip", "fashionAI_attributes_train2.zip"),
                     ("Images", "Annotations"), _merge_fashionai),),
        manual=_Manual(
            title="FashionAI (Tianchi FashionAI Global Challenge 2018, attributes track)",
            url=FASHIONAI_URL,
            access="sign-up required",
            origins={"fashionAI_attributes_train1.zip": "attributes track training data",
                     "fashionAI_attributes_train2.zip": "attributes track training data"},
            hint="or extract them there yourself so that Images/<task>_labels/ and Annotations/label.csv exist",
        ),
    ),
    "deepfashion": _Spec(
        image_dir="img",
        required=("img/", "Anno/list_attr_cloth.txt", "Anno/list_attr_img.txt", "Eval/list_eval_partition.txt"),
        archive_dir="",
        parts=(_Part("images", ("img.zip",), ("img",), _anchored(("img", "img/"))),),
        loose=(("list_attr_cloth.txt", "Anno"), ("list_attr_img.txt", "Anno"),
               ("list_eval_partition.txt", "Eval")),
        manual=_Manual(
            title="DeepFashion (Category and Attribute Prediction Benchmark)",
            url=DEEPFASHION_URL,
            access="sign-up required: agree to the licence to get the Google Drive link",
            origins={"img.zip": "in the release's Img/ folder",
                     "list_attr_cloth.txt": "in the release's Anno/ folder",
                     "list_attr_img.txt": "in the release's Anno/ folder",
                     "list_eval_partition.txt": "in the release's Eval/ folder"},
            hint="the .txt files may also go in Anno/ and Eval/ there; img.zip may also be extracted "
                 "there by hand, as img/<Folder>/img_XXXXXXXX.jpg",
        ),
    ),
}


def _spec(dataset: str) -> _Spec:
    if dataset not in SPECS:
        raise KeyError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(SPECS))}")
    return SPECS[dataset]


# ------------------------------------------------------------------------------------------------
# Layout checks and the manifest


def _first_missing(root: Path, required: Sequence[str]) -> str | None:
    """Why the first required path is not in place, or None when all are."""
    for rel in required:
        path = root / rel.rstrip("/")
        if rel.endswith("/"):
            if not path.is_dir():
                return f"{path}: required folder is missing"
            with os.scandir(path) as entries:
                if next(entries, None) is None:
                    return f"{path}: required folder is empty"
        elif not path.is_file():
            return f"{path}: required file is missing"
    return None


def check_layout(dataset: str, root: str | Path) -> None:
    """Raise FileNotFoundError naming the first required path of ``dataset`` missing under ``root``."""
    problem = _first_missing(Path(root), _spec(dataset).required)
    if problem:
        raise FileNotFoundError(f"{problem} ({dataset} layout under data.root = {root})")


def _image_stats(folder: Path) -> tuple[int, int]:
    count = total = 0
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    stack.append(Path(entry.path))
                elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                    count += 1
                    total += entry.stat().st_size
    return count, total


def images_sha256(dataset: str, root: str | Path) -> str:
    """SHA-256 over every image under the dataset's image folder (relative path and bytes, in
    path order): what tells a re-rendered stand-in from the previous one when only the pixels
    differ. For the small demo stand-ins; the real datasets are described by their archives."""
    folder = Path(root) / _spec(dataset).image_dir
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def manifest(dataset: str, root: str | Path) -> dict:
    """What is under ``root``: image count and bytes, required files' sizes, archives' records.

    Deterministic (keys sorted, no timestamps, ``root`` as given): the stage's DVC output changes
    only when the data does. Images are counted, not hashed (up to 290k files); archives are
    described by their size/SHA-256 records (``<archive>.sha256``) where those exist.
    """
    spec = _spec(dataset)
    root = Path(root)
    check_layout(dataset, root)
    count, total = _image_stats(root / spec.image_dir)
    archives = {}
    for name in sorted(a for part in spec.parts for a in part.archives):
        # download.verify writes the record beside the archive under this name
        record = root / spec.archive_dir / f"{name}.sha256"
        if record.is_file():
            data = json.loads(record.read_text())
            archives[name] = {"sha256": data["sha256"], "size": data["size"]}
    files = {rel: (root / rel).stat().st_size for rel in sorted(spec.required) if not rel.endswith("/")}
    return {"archives": archives, "dataset": dataset, "files": files,
            "images": {"bytes": total, "count": count, "folder": spec.image_dir}, "root": root.as_posix()}


# ------------------------------------------------------------------------------------------------
# Acquisition


def _read_marker(root: Path, dataset: str) -> dict:
    path = root / MARKER
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data["parts"] if data.get("dataset") == dataset else {}


def _write_marker(root: Path, dataset: str, parts: dict) -> None:
    tmp = root / f"{MARKER}.tmp"
    tmp.write_text(json.dumps({"dataset": dataset, "parts": parts}, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, root / MARKER)


def _install(staged: Path, dest: Path, trash: Path) -> None:
    """Rename ``staged`` to ``dest``; a previous ``dest`` is moved into ``trash`` (deleted later)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        log.info("replacing %s", dest)
        os.replace(dest, trash / f"old-{dest.name}")
    os.replace(staged, dest)


def _advice(spec: _Spec, archive: Path) -> str:
    record = f"{archive.name}.sha256"
    if spec.manual:
        return f"replace it with a fresh copy from {spec.manual.url} and delete {record} beside it"
    return f"delete it and {record} beside it to download it again"


def _verify_archive(spec: _Spec, path: Path) -> dict:
    try:
        return download.verify(path)
    except download.ChecksumError as err:
        if spec.manual is None:
            raise
        raise download.ChecksumError(f"{err}; or, if you replaced the archive on purpose, delete "
                                     f"{path.name}.sha256 beside it ({spec.manual.url})") from None


def _part_current(root: Path, spec: _Spec, part: _Part, recorded: dict, infos: dict) -> bool:
    """Outputs complete, and extracted from the archives now present (or placed by hand)."""
    if _first_missing(root, [r for r in spec.required if r.split("/")[0] in part.outputs]):
        return False
    entry = recorded.get(part.name)
    if entry is None:  # complete but never extracted here: the user put it in place
        return True
    return all(entry["archives"].get(name, {}).get("sha256") == infos[name]["sha256"]
               for name in part.archives if name in infos)


def _missing_message(spec: _Spec, dataset: str, root: Path, missing: Sequence[str]) -> str:
    manual = spec.manual
    where = root.resolve()
    lines = [f"{manual.title} is not in place under {where} and cannot be downloaded automatically.",
             "Missing files:",
             *(f"  - {name} ({manual.origins[name]})" for name in missing),
             f"Get them from {manual.url} ({manual.access}).",
             f"Put them in: {where}",
             f"  ({manual.hint})",
             "Then run: dvc repro",
             f"(data.root for {dataset} is {root})"]
    return "\n".join(lines)


def acquire(dataset: str, root: str | Path, *, urls: Mapping[str, str] | None = None) -> dict:
    """Put ``dataset`` into its genuine layout under ``root``; returns :func:`manifest`.

    ``urls`` overrides where the Zappos archives are downloaded from (archive name -> URL; the
    default is :data:`ZAPPOS_URLS`); manual datasets take none. Raises :class:`MissingDataError`
    when manual files are missing, ``download.ChecksumError`` when an archive differs from its
    record, :class:`ArchiveError` for an unreadable or unsafe archive, KeyError for an unknown
    dataset.
    """
    spec = _spec(dataset)
    if urls is not None and spec.manual:
        raise ValueError(f"{dataset} cannot be downloaded automatically; urls apply to zappos only")
    urls = spec.urls if urls is None else urls
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    archive_dir = root / spec.archive_dir
    for leftover in root.glob(f"{STAGING_PREFIX}*"):  # from an interrupted run; may be large
        log.info("removing %s left by an interrupted run", leftover)
        shutil.rmtree(leftover)

    infos = {name: _verify_archive(spec, archive_dir / name)
             for part in spec.parts for name in part.archives if (archive_dir / name).is_file()}
    recorded = _read_marker(root, dataset)
    stale = [part for part in spec.parts if not _part_current(root, spec, part, recorded, infos)]
    needed = [name for part in stale for name in part.archives if name not in infos]
    # Loose files the user placed in root itself move to their folder; one found nowhere is missing.
    moves = [(root / name, root / folder / name) for name, folder in spec.loose if (root / name).is_file()]
    needed += [name for name, folder in spec.loose
               if not (root / name).is_file() and not (root / folder / name).is_file()]

    if needed and spec.manual:
        raise MissingDataError(_missing_message(spec, dataset, root, needed))
    for name in needed:  # every download happens before anything is extracted
        if name not in urls:
            raise KeyError(f"no download URL for {name} (urls has {', '.join(sorted(urls))})")
        infos[name] = download.fetch(urls[name], archive_dir / name)

    for src, dest in moves:
        if dest.exists():
            log.info("replacing %s with %s", dest, src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
    for part in stale:
        scratch = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
        try:
            extracted = []
            for i, name in enumerate(part.archives):
                tree = scratch / f"archive{i}"
                _extract_zip(archive_dir / name, tree, _advice(spec, archive_dir / name))
                extracted.append((archive_dir / name, tree))
            arranged = scratch / "arranged"
            arranged.mkdir()
            trash = scratch / "trash"
            trash.mkdir()
            for output, staged in part.arrange(extracted, arranged).items():
                _install(staged, root / output, trash)
        finally:
            shutil.rmtree(scratch)
        recorded[part.name] = {"archives": {name: infos[name] for name in part.archives},
                               "outputs": sorted(part.outputs)}
        _write_marker(root, dataset, recorded)
        log.info("%s: %s in place under %s", dataset, ", ".join(part.outputs), root)
    if not stale:
        log.info("%s: layout already in place under %s", dataset, root)
    return manifest(dataset, root)  # checks the layout first
