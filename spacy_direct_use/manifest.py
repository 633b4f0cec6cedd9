"""A digest of every file a direct_* component's to_disk writes (direct_ner, direct_textcat,
direct_tagger, direct_vectors: the same layout for all), checked before a saved pipeline is used.

to_disk writes `manifest.json` last, next to what it saved in the component's directory
(e.g. `direct_tagger/manifest.json`), covering every file under that directory whatever its name:

    {"format_version": 1, "algorithm": "sha256",
     "files": [{"path": "model/config.json", "size": 734, "sha256": "9f2c..."}, ...]}

from_disk (and so spacy.load and from_bytes) checks it before anything saved is read: a
file that is missing, of another size or digest, or not listed raises a DirectUseError.
A directory without a manifest (saved by an older spacy-direct-use) loads, with a warning.
"""
import hashlib
import json
import logging
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, Iterator, Tuple

from .errors import DirectUseError, Errors, speaker

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
ALGORITHM = "sha256"
BLOCK = 1 << 20

logger = logging.getLogger("spacy_direct_use")

Listing = Dict[str, Tuple[int, str]]
"""Relative POSIX path -> (size in bytes, sha256 hex digest)."""


def write_manifest(directory: Path) -> Path:
    """Write the manifest of every file under `directory` (the manifest itself excepted)."""
    directory = Path(directory)
    files = [{"path": rel, "size": path.stat().st_size, ALGORITHM: file_digest(path)} for rel, path in _files(directory)]
    manifest = {"format_version": FORMAT_VERSION, "algorithm": ALGORITHM, "files": files}
    target = directory / MANIFEST_FILE
    target.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf8")
    target.chmod(target.stat().st_mode | 0o444)
    return target


def verify_manifest(directory: Path, exclude: Iterable[str] = tuple()) -> None:
    """Raise a DirectUseError unless every file under `directory` is as to_disk saved it.
    Files under a top-level name in `exclude` (from_disk's exclude) are not checked."""
    directory = Path(directory)
    manifest = directory / MANIFEST_FILE
    if not manifest.exists():
        logger.warning(
            "[%s] The saved pipeline directory '%s' has no %s (saved before spacy-direct-use "
            "wrote one, or it was deleted): its files could not be verified. Re-save the "
            "pipeline with nlp.to_disk() to have them checked when it loads.",
            speaker(),
            directory,
            MANIFEST_FILE,
        )
        return
    skipped = set(exclude)
    listing = {rel: saved for rel, saved in read_manifest(manifest).items() if _top(rel) not in skipped}
    for rel, (size, digest) in listing.items():
        _check_file(directory / rel, size, digest)
    unlisted = sorted(rel for rel, _ in _files(directory) if rel not in listing and _top(rel) not in skipped)
    unlisted = [rel for rel in unlisted if not PurePosixPath(rel).name.startswith(".")]  # .DS_Store and the like
    if unlisted:
        raise DirectUseError(Errors.E053.format(directory=directory, files=unlisted, manifest=manifest))


def read_manifest(manifest: Path) -> Listing:
    """The listing a manifest holds; a DirectUseError if it is unreadable or not a manifest."""
    try:
        data = json.loads(manifest.read_text(encoding="utf8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DirectUseError(Errors.E052.format(manifest=manifest, detail=_reason(err))) from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise DirectUseError(Errors.E056.format(manifest=manifest, version=version, supported=FORMAT_VERSION))
    if version != FORMAT_VERSION or data.get("algorithm") != ALGORITHM or not isinstance(data.get("files"), list):
        detail = f"not a format_version {FORMAT_VERSION} {ALGORITHM} manifest with a list of files"
        raise DirectUseError(Errors.E052.format(manifest=manifest, detail=detail))
    listing: Listing = {}
    for entry in data["files"]:
        rel, size, digest = _entry(entry)
        if rel is None or rel in listing:
            raise DirectUseError(Errors.E052.format(manifest=manifest, detail=f"bad or repeated entry {_short(entry)}"))
        listing[rel] = (size, digest)
    return listing


def file_digest(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks (hashlib.file_digest needs Python 3.11)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path: Path, size: int, digest: str) -> None:
    if not path.is_file():
        raise DirectUseError(Errors.E051.format(file=path))
    actual_size = path.stat().st_size
    if actual_size != size:
        detail = f"it has {actual_size:,} bytes, {size:,} were saved"
        raise DirectUseError(Errors.E050.format(file=path, detail=detail))
    actual = file_digest(path)
    if actual != digest:
        detail = f"its {ALGORITHM} is {actual[:16]}…, {digest[:16]}… was saved"
        raise DirectUseError(Errors.E050.format(file=path, detail=detail))


def _files(directory: Path) -> Iterator[Tuple[str, Path]]:
    """(relative POSIX path, path) of every file under `directory` but the manifest, sorted."""
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel != MANIFEST_FILE:
            yield rel, path


def _entry(entry: object) -> Tuple[object, int, str]:
    """(path, size, digest) of a manifest entry; path None if the entry is malformed or unsafe."""
    if not isinstance(entry, dict):
        return None, 0, ""
    rel, size, digest = entry.get("path"), entry.get("size"), entry.get(ALGORITHM)
    ok_size = isinstance(size, int) and not isinstance(size, bool) and size >= 0
    ok_digest = isinstance(digest, str) and len(digest) == 64
    if not (isinstance(rel, str) and _safe(rel) and ok_size and ok_digest):
        return None, 0, ""
    return rel, size, digest.lower()


def _safe(rel: str) -> bool:
    """A relative path inside the directory: no absolute path, '..', backslash or drive."""
    path = PurePosixPath(rel)
    bad_part = any(p in ("", ".", "..") or "\\" in p or ":" in p for p in path.parts)
    return bool(path.parts) and not path.is_absolute() and not bad_part and path.as_posix() == rel


def _top(rel: str) -> str:
    return PurePosixPath(rel).parts[0]


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")


def _short(entry: object, limit: int = 120) -> str:
    text = repr(entry)
    return text if len(text) <= limit else text[: limit - 1] + "…"
