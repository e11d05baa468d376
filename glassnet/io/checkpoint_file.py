"""One checkpoint, one file: arrays and metadata under one SHA-256, replaced atomically.

A checkpoint ``STEM.safetensors`` is an ordinary ``.safetensors`` file (any
safetensors reader opens it) whose header's ``__metadata__`` holds:

* ``format`` = ``"glassnet-checkpoint"``, ``format_version`` = ``"2"``;
* ``glassnet_checkpoint``: the checkpoint's metadata as JSON text (epoch,
  step, optimizer groups, scheduler and RNG states, metrics, config; see
  :mod:`glassnet.io.checkpoint`);
* ``glassnet_checkpoint_sha256``: the SHA-256 of the *whole file* as it
  reads with these 64 hex digits replaced by 64 zeros. Every byte -- arrays,
  header, metadata -- is covered: a flipped bit anywhere is detected.

Writing (:func:`write_checkpoint_file`): the file is written under a
temporary name in the same folder (hashed as it streams out), the digest is
patched into its header, it is fsynced and renamed over ``STEM.safetensors``
with one ``os.replace``; the folder is fsynced. So at every instant the
folder holds either the previous complete checkpoint or the new complete
one, never a mix; an error (disk full, Ctrl-C) removes the temporary and
leaves the previous file as it was. Temporaries left by a killed process
(``.STEM.safetensors.*.tmp``) are removed by the next write in that folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from pathlib import Path

from ..errors import DataFormatError
from ..limits import check_json_depth
from .checkpoint_json import decode_text
from .state_dict_file import _atomic_write, _prepare_arrays, _write_safetensors

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "write_checkpoint_file", "read_checkpoint_metadata",
           "remove_stale_temporaries", "NotACheckpointFile"]

FORMAT_NAME = "glassnet-checkpoint"
FORMAT_VERSION = 2
META_KEY = "glassnet_checkpoint"
HASH_KEY = "glassnet_checkpoint_sha256"
_PLACEHOLDER = "0" * 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors reference limit
_CHUNK = 1 << 20


class NotACheckpointFile(DataFormatError):
    """A readable ``.safetensors`` file that carries no glassnet checkpoint metadata
    (a plain state dict, or a checkpoint of format version 1 with a ``.json`` beside it)."""


class _HashingWriter:
    """A write-only file wrapper that hashes what passes through and keeps the header bytes."""

    def __init__(self, f):
        self._f = f
        self.sha = hashlib.sha256()
        self.head = bytearray()  # the first writes: 8-byte length + JSON header
        self._writes = 0

    def write(self, data) -> int:
        self.sha.update(data)
        if self._writes < 2:
            self.head += bytes(data)
        self._writes += 1
        return self._f.write(data)


def write_checkpoint_file(path, arrays, meta_text: str) -> Path:
    """Write ``arrays`` (name -> array) and ``meta_text`` (JSON) as one checkpoint file at ``path``, atomically.

    Returns the path written. Raises :class:`~glassnet.io.pth.StateDictFileError`
    for arrays the format cannot store (before any file is touched) and
    ``OSError`` (e.g. ``ENOSPC``) when the disk refuses the write -- in both
    cases the previous file at ``path`` is unchanged and no temporary remains.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    prepared = _prepare_arrays(arrays, os.fspath(path), ".safetensors")
    metadata = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION),
                HASH_KEY: _PLACEHOLDER, META_KEY: meta_text}

    def write(f):
        hashing = _HashingWriter(f)
        _write_safetensors(hashing, prepared, metadata)
        at = _placeholder_offset(bytes(hashing.head))
        f.seek(at)
        f.write(hashing.sha.hexdigest().encode("ascii"))
        f.seek(0, os.SEEK_END)

    _atomic_write(os.fspath(path), write)
    return path


def _placeholder_offset(head: bytes) -> int:
    key = f'"{HASH_KEY}"'.encode("ascii")
    start = head.find(key)
    at = head.find(_PLACEHOLDER.encode("ascii"), start)
    if start < 0 or at < 0:  # pragma: no cover - the writer always puts it there
        raise DataFormatError("internal error: checkpoint digest placeholder not found in the header")
    return at


def remove_stale_temporaries(folder) -> list[Path]:
    """Delete the temporaries a killed save left in ``folder`` (``.NAME.safetensors.*.tmp``); return them."""
    removed = []
    for tmp in Path(folder).glob(".*.safetensors.*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


def read_checkpoint_metadata(path, verify_hash: bool = True) -> dict:
    """The decoded metadata of checkpoint file ``path``, after checking its SHA-256.

    Raises :class:`NotACheckpointFile` for a valid ``.safetensors`` file without
    glassnet checkpoint metadata, and :class:`~glassnet.errors.DataFormatError`
    naming the file for anything corrupt (short file, header past the end,
    bad JSON, a digest that does not match the bytes).
    """
    path = Path(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        raw_len = f.read(8)
        if len(raw_len) < 8:
            raise DataFormatError(f"{path}: checkpoint file is {size} bytes, too short for a header")
        (n,) = struct.unpack("<Q", raw_len)
        if n > min(_MAX_HEADER, size - 8):
            raise DataFormatError(f"{path}: checkpoint header length {n} runs past the end of the "
                                  f"{size}-byte file (truncated or not a checkpoint)")
        head = f.read(n)
        metadata = _header_metadata(head, path)
        digest = metadata.get(HASH_KEY)
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise DataFormatError(f"{path}: checkpoint header has no valid {HASH_KEY} entry")
        if verify_hash:
            sha = hashlib.sha256(raw_len)
            sha.update(head.replace(digest.encode("ascii"), _PLACEHOLDER.encode("ascii"), 1))
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                sha.update(chunk)
            if sha.hexdigest() != digest:
                raise DataFormatError(
                    f"{path}: checkpoint SHA-256 {sha.hexdigest()[:16]}... does not match the "
                    f"{digest[:16]}... recorded in its header: the file is corrupt (bit rot, or "
                    "changed after it was written)")
    text = metadata.get(META_KEY)
    if not isinstance(text, str):
        raise DataFormatError(f"{path}: checkpoint header has no {META_KEY} entry")
    meta = decode_text(text, path)
    if not isinstance(meta, dict):
        raise DataFormatError(f"{path}: checkpoint metadata is a {type(meta).__name__}, not an object")
    return meta


def _header_metadata(head: bytes, path) -> dict:
    """``__metadata__`` of a safetensors header, checked to be a glassnet checkpoint's."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: checkpoint header is not UTF-8 text: {exc}") from None
    check_json_depth(text, path)
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an integer past Python's digit limit
        raise DataFormatError(f"{path}: checkpoint header is not valid JSON: {exc}") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        metadata = {}
    if metadata.get("format") != FORMAT_NAME:
        raise NotACheckpointFile(f"{path}: not a glassnet checkpoint file (no '{FORMAT_NAME}' metadata)")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise DataFormatError(f"{path}: checkpoint format version {metadata.get('format_version')!r} is not "
                              f"supported (this glassnet reads version {FORMAT_VERSION})")
    return metadata
