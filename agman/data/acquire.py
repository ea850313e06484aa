"""The ``download`` stage's machinery: get a real dataset into its genuine layout under ``data.root``.

What a dataset's layout is and where its files come from is an :class:`AcquireSpec`, declared
in the dataset's own module (``agman.data.fashionai.ACQUIRE``, ``agman.data.deepfashion.ACQUIRE``,
``agman.data.zappos.ACQUIRE``); this module only carries it out and never imports them.
``acquire(spec, root)`` leaves the layout that the readers expect (docs/datasets.md):

* automatic datasets (Zappos, whose spec has ``urls``): the archives are fetched into
  ``<root>/<archive_dir>/`` with :func:`agman.data.download.fetch` (resumable, size and SHA-256
  recorded then verified) and arranged.
* manual datasets (FashionAI, DeepFashion: sign-up required, the spec has ``manual``): the user
  places the release's files in ``root``; they are verified, extracted and arranged. When
  something is missing, :class:`MissingDataError` says which files, where to get them, where to
  put them and what to run afterwards.

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
from agman.data.errors import ArchiveError, MissingDataError
from agman.io import write_file_atomically

log = logging.getLogger(__name__)

MARKER = ".acquired.json"
STAGING_PREFIX = ".acquire-staging-"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
#: Folders that archivers add beside the real content (macOS resource forks); never a match.
JUNK_DIRS = frozenset({"__MACOSX"})


#: (archives as (path, extracted tree) pairs, a scratch folder) -> {root entry: staged path}.
Arranger = Callable[[Sequence[tuple[Path, Path]], Path], dict[str, Path]]


@dataclass(frozen=True)
class Part:
    """Archives extracted together and the top-level entries of ``root`` they install."""

    name: str
    archives: tuple[str, ...]
    outputs: tuple[str, ...]
    arrange: Arranger


@dataclass(frozen=True)
class Manual:
    """Where a manual dataset comes from, for :class:`MissingDataError` messages."""

    title: str
    url: str
    access: str
    origins: dict[str, str]  # file name -> where it sits in the release
    hint: str  # what else the user may do instead of placing the files


@dataclass(frozen=True)
class AcquireSpec:
    """A dataset's final layout and how to produce it."""

    dataset: str  # the genuine format's name (fashionai, deepfashion, zappos): in messages, marker, manifest
    image_dir: str
    required: tuple[str, ...]  # paths relative to root; a trailing "/" means a non-empty folder
    archive_dir: str  # where the archives live, relative to root
    parts: tuple[Part, ...]
    loose: tuple[tuple[str, str], ...] = ()  # (file name, folder it belongs in), moved as they are
    manual: Manual | None = None  # set for a dataset the user has to download by hand
    urls: dict[str, str] = field(default_factory=dict)  # archive name -> URL, for an automatic download


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


def locate(tree: Path, anchor: str, archive: Path) -> Path:
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
    return {output: locate(tree, anchor, archive) / output for output, anchor in anchors}


def merge_tree(src: Path, dest: Path, archive: Path, first_archive: Path) -> int:
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


def anchored(*anchors: tuple[str, str]) -> Arranger:
    """An arranger for one archive: for each (output, anchor) pair, the entry ``output`` of the
    shallowest folder holding ``anchor`` (see :func:`locate`), wherever that sits in the archive."""
    return partial(_arrange_anchored, anchors)


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


def check_layout(spec: AcquireSpec, root: str | Path) -> None:
    """Raise FileNotFoundError naming the first required path of ``spec`` missing under ``root``."""
    problem = _first_missing(Path(root), spec.required)
    if problem:
        raise FileNotFoundError(f"{problem} ({spec.dataset} layout under data.root = {root})")


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


def images_sha256(spec: AcquireSpec, root: str | Path) -> str:
    """SHA-256 over every image under the dataset's image folder (relative path and bytes, in
    path order): what tells a re-rendered stand-in from the previous one when only the pixels
    differ. For the small demo stand-ins; the real datasets are described by their archives."""
    folder = Path(root) / spec.image_dir
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def manifest(spec: AcquireSpec, root: str | Path) -> dict:
    """What is under ``root``: image count and bytes, required files' sizes, archives' records.

    Deterministic (keys sorted, no timestamps, ``root`` as given): the stage's DVC output changes
    only when the data does. Images are counted, not hashed (up to 290k files); archives are
    described by their size/SHA-256 records (``<archive>.sha256``) where those exist.
    """
    root = Path(root)
    check_layout(spec, root)
    count, total = _image_stats(root / spec.image_dir)
    archives = {}
    for name in sorted(a for part in spec.parts for a in part.archives):
        # download.verify writes the record beside the archive under this name
        record = root / spec.archive_dir / f"{name}.sha256"
        if record.is_file():
            data = json.loads(record.read_text())
            archives[name] = {"sha256": data["sha256"], "size": data["size"]}
    files = {rel: (root / rel).stat().st_size for rel in sorted(spec.required) if not rel.endswith("/")}
    return {"archives": archives, "dataset": spec.dataset, "files": files,
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
    text = json.dumps({"dataset": dataset, "parts": parts}, indent=1, sort_keys=True) + "\n"
    write_file_atomically(root / MARKER, text)


def _install(staged: Path, dest: Path, trash: Path) -> None:
    """Rename ``staged`` to ``dest``; a previous ``dest`` is moved into ``trash`` (deleted later)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        log.info("replacing %s", dest)
        os.replace(dest, trash / f"old-{dest.name}")
    os.replace(staged, dest)


def _advice(spec: AcquireSpec, archive: Path) -> str:
    record = f"{archive.name}.sha256"
    if spec.manual:
        return f"replace it with a fresh copy from {spec.manual.url} and delete {record} beside it"
    return f"delete it and {record} beside it to download it again"


def _verify_archive(spec: AcquireSpec, path: Path) -> dict:
    try:
        return download.verify(path)
    except download.ChecksumError as err:
        if spec.manual is None:
            raise
        raise download.ChecksumError(f"{err}; or, if you replaced the archive on purpose, delete "
                                     f"{path.name}.sha256 beside it ({spec.manual.url})") from None


def _part_current(root: Path, spec: AcquireSpec, part: Part, recorded: dict, infos: dict) -> bool:
    """Outputs complete, and extracted from the archives now present (or placed by hand)."""
    if _first_missing(root, [r for r in spec.required if r.split("/")[0] in part.outputs]):
        return False
    entry = recorded.get(part.name)
    if entry is None:  # complete but never extracted here: the user put it in place
        return True
    return all(entry["archives"].get(name, {}).get("sha256") == infos[name]["sha256"]
               for name in part.archives if name in infos)


def _missing_message(spec: AcquireSpec, root: Path, missing: Sequence[str]) -> str:
    """First line ``<first missing file>: data.root: <what>`` (what a stage prints folded into one
    line), then every missing file with its place in the release and what to do."""
    manual = spec.manual
    where = root.resolve()
    lines = [f"{where / missing[0]}: data.root: {manual.title} is not in place under {where} "
             f"({len(missing)} file{'s' if len(missing) > 1 else ''} missing) and cannot be downloaded automatically.",
             "Missing files:",
             *(f"  - {name} ({manual.origins[name]})" for name in missing),
             f"Get them from {manual.url} ({manual.access}).",
             f"Put them in: {where}",
             f"  ({manual.hint})",
             "Then run: dvc repro",
             f"(data.root for {spec.dataset} is {root})"]
    return "\n".join(lines)


def acquire(spec: AcquireSpec, root: str | Path, *, urls: Mapping[str, str] | None = None) -> dict:
    """Put the dataset of ``spec`` into its genuine layout under ``root``; returns :func:`manifest`.

    ``urls`` overrides where an automatic dataset's archives are downloaded from (archive name ->
    URL; the default is ``spec.urls``); manual datasets take none. Raises :class:`MissingDataError`
    when manual files are missing, ``download.ChecksumError`` when an archive differs from its
    record, :class:`ArchiveError` for an unreadable or unsafe archive, KeyError for an archive
    without a download URL.
    """
    dataset = spec.dataset
    if urls is not None and spec.manual:
        raise ValueError(f"{dataset} cannot be downloaded automatically; urls apply to automatic downloads only")
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
        raise MissingDataError(_missing_message(spec, root, needed))
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
    return manifest(spec, root)  # checks the layout first
