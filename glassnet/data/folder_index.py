"""Scanning a folder of photos, one subfolder per class, as torchvision's ``ImageFolder`` does.

:func:`find_classes` lists the class folders, :func:`make_dataset` the ``(path, class_index)``
samples below them (symbolic links followed, loops cut). Both :class:`~glassnet.data.ImageFolder`
and :class:`~glassnet.data.ImageCache` scan with them; this module imports neither.
"""
from __future__ import annotations

import os

from ..errors import InvalidArgumentError
from .datasets import DatasetNotFoundError

__all__ = ["IMG_EXTENSIONS", "find_classes", "make_dataset", "has_file_allowed_extension"]

#: torchvision's default image extensions (GIF is not among them there either)
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def has_file_allowed_extension(filename: str, extensions) -> bool:
    """Whether ``filename`` ends, case-insensitively, with one of ``extensions`` (lowercase)."""
    return filename.lower().endswith(extensions if isinstance(extensions, str) else tuple(extensions))


def find_classes(directory) -> tuple[list[str], dict[str, int]]:
    """The class folders of ``directory``, sorted, and their indices (torchvision's ``find_classes``)."""
    try:
        with os.scandir(directory) as it:
            classes = sorted(entry.name for entry in it if entry.is_dir())
    except OSError as exc:
        raise DatasetNotFoundError(f"ImageFolder: cannot list the folder {directory}: {exc.strerror or exc}") from exc
    if not classes:
        raise DatasetNotFoundError(f"ImageFolder: couldn't find any class folder in {directory} "
                                   "(expected one subfolder of images per class)")
    return classes, {name: i for i, name in enumerate(classes)}


def _walk(top):
    """``os.walk(top, followlinks=True)``, not descending into a link back to a folder above."""
    ids = {}
    for root, dirs, files in os.walk(top, followlinks=True):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        parent, loop = os.path.dirname(root), False
        while len(parent) >= len(top) and parent in ids:
            if ids[parent] == key:
                loop = True
                break
            parent = os.path.dirname(parent)
        if loop:
            dirs[:] = []
            continue
        ids[root] = key
        yield root, dirs, files


def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None,
                 allow_empty: bool = False) -> list[tuple[str, int]]:
    """``[(path, class_index), ...]``: torchvision's ``make_dataset`` (give ``extensions`` or
    ``is_valid_file``, not both), safe against symbolic-link loops."""
    directory = os.path.expanduser(str(directory))
    if not class_to_idx:
        raise InvalidArgumentError("make_dataset: class_to_idx must have at least one entry to collect any samples")
    if (extensions is None) == (is_valid_file is None):
        raise InvalidArgumentError("make_dataset: give exactly one of extensions and is_valid_file")
    if extensions is not None:
        exts = extensions if isinstance(extensions, str) else tuple(e.lower() for e in extensions)

        def is_valid_file(path):
            return has_file_allowed_extension(path, exts)
    instances, found = [], set()
    for target_class in sorted(class_to_idx):
        class_index = class_to_idx[target_class]
        target_dir = os.path.join(directory, target_class)
        if not os.path.isdir(target_dir):
            continue
        for root, _, fnames in sorted(_walk(target_dir)):
            for fname in sorted(fnames):
                path = os.path.join(root, fname)
                if is_valid_file(path):
                    instances.append((path, class_index))
                    found.add(target_class)
    empty = set(class_to_idx) - found
    if empty and not allow_empty:
        msg = f"ImageFolder: found no valid file for the classes {', '.join(sorted(empty))} in {directory}"
        if extensions is not None:
            shown = extensions if isinstance(extensions, str) else ", ".join(extensions)
            msg += f"; supported extensions are: {shown}"
        raise DatasetNotFoundError(msg + " (pass allow_empty=True to accept empty classes)")
    return instances
