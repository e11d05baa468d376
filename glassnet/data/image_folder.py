"""A folder of photos, one subfolder per class: :class:`ImageFolder`, with torchvision's semantics.

    root/dog/xxx.png
    root/dog/nested/xxy.jpg
    root/cat/123.jpg

    ds = ImageFolder("root", transform=Compose([RandomResizedCrop(224), RandomHorizontalFlip(),
                                                ToFloat(), Normalize(IMAGENET_MEAN, IMAGENET_STD)]))

Classes are the subfolders of ``root``, sorted; a sample is every file below a class folder
(symbolic links followed, in sorted order) whose name ends, case-insensitively, with one of
``extensions`` (torchvision's :data:`IMG_EXTENSIONS`; add ``".gif"`` to read GIFs), or for
which ``is_valid_file(path)`` is true. As in torchvision, a root with no class folder or a class
folder with no image is an error (``allow_empty=True`` accepts empty classes). Images decode
with :func:`glassnet.data.decode.decode_image` to (C, H, W) uint8, the pixels torchvision's
``pil_loader`` gives (see that module for the conversions and where glassnet differs).

Files that cannot be decoded
----------------------------
``on_error="raise"`` (the default): fetching such a file raises
:class:`~glassnet.errors.DataFormatError` naming it. ``on_error="skip"``: every file is checked
once, when the dataset is built (:func:`~glassnet.data.decode.verify_image`: each byte read and
entropy-decoded, JPEGs at 1/8 scale; a few threads; a progress bar on a terminal), the bad ones
are left out of ``samples`` with ONE warning listing them, and ``skipped`` holds
``(path, reason)`` for each. So ``len(ds)``, the indices and the epochs are fixed from the start
and do not depend on which worker meets a bad file when; a file that breaks after the check
raises when fetched. The check costs about a third of a full decode: for a large folder that is
read many times, build an image cache (``glassnet prepare``) instead, which checks as it decodes.

Reading from a cache
--------------------
``ImageFolder(root, transform, cache=CACHE)`` reads the images of ``root`` from a cache that
``glassnet prepare root --out CACHE`` (:func:`~glassnet.data.prepare_image_cache`) wrote: the
pixels come from the :class:`~glassnet.data.ImageCache` the command line trains from (the
cache's ``size x size`` centre crops, no decoding), the same transform is applied to them,
and ``classes``, ``samples`` and ``targets`` are those of the folder. The cache is checked
against ``root`` when the dataset is built: a stale cache (files added, removed or touched),
a foreign one (another folder's) or one built with other ``extensions`` raises
:class:`~glassnet.data.CacheError` with the command that rebuilds it. A cache built in the
other mode is converted as Pillow converts. With ``on_error="raise"`` a cache that left out
undecodable files (``--skip-bad``) is refused; ``on_error="skip"`` warns once, listing them.
"""
from __future__ import annotations

import os
import warnings

from ..errors import DataFormatError, InvalidArgumentError, InvalidTypeError
from .base import Dataset, _as_index
from .decode import MAX_PIXELS, check_decode_args, decode_image, verify_image
from .folder_index import (  # IMG_EXTENSIONS, has_file_allowed_extension: re-exported (in __all__)
    IMG_EXTENSIONS, find_classes, has_file_allowed_extension, make_dataset)
from .sample_rng import sample_rng
from .transforms import apply_transform

__all__ = ["ImageFolder", "IMG_EXTENSIONS", "find_classes", "make_dataset", "has_file_allowed_extension"]

#: how many files ``on_error="skip"``'s warning names
WARN_LIST = 50


def _check_file(args):
    path, loader, max_pixels = args
    try:
        if loader is None:
            verify_image(path, max_pixels=max_pixels)
        else:
            loader(path)
    except MemoryError:
        raise
    except Exception as exc:  # a custom loader may raise anything for a bad file
        text = str(exc)
        return text[len(path) + 2:] if text.startswith(path + ": ") else f"{type(exc).__name__}: {text}"
    return None


def verify_files(paths, loader=None, max_pixels: int = MAX_PIXELS, desc: str = "checking images") -> list:
    """For each path, ``None`` if it decodes, else the reason it does not (a progress bar on a tty).

    The files are checked in the calling thread, one after the other: the decoder
    turns Pillow's bomb warning into an error with ``warnings.catch_warnings``,
    which changes process-wide state and is not safe to use from several threads.
    """
    from tqdm.auto import tqdm

    jobs = [(p, loader, max_pixels) for p in paths]
    return [_check_file(job) for job in tqdm(jobs, desc=desc, unit="img", disable=None, leave=False)]


def skipped_message(who: str, skipped, total: int) -> str:
    """One warning's text naming the files left out (the first :data:`WARN_LIST`)."""
    lines = [f"{who}: skipped {len(skipped)} of {total} files that cannot be decoded:"]
    lines += [f"  {path}: {why}" for path, why in skipped[:WARN_LIST]]
    if len(skipped) > WARN_LIST:
        lines.append(f"  ... and {len(skipped) - WARN_LIST} more (all listed in .skipped)")
    return "\n".join(lines)


class ImageFolder(Dataset):
    """Photos in class subfolders (torchvision's ``ImageFolder``), decoded to (C, H, W) uint8.

    Args:
        root: the folder holding one subfolder per class.
        transform: applied as ``transform(x, rng=rng)`` to each decoded image (uint8 (C, H, W));
            ``None`` returns it as decoded.
        target_transform: applied to the class index.
        extensions: file name endings that count as images (case-insensitive).
        mode: ``"RGB"`` (C = 3) or ``"L"`` (C = 1).
        on_error: ``"raise"`` or ``"skip"`` (see the module docstring).
        loader: ``loader(path)`` instead of the decoder; its result goes to ``transform`` as is.
        is_valid_file: ``is_valid_file(path) -> bool`` instead of the extension test.
        allow_empty: accept class folders without images.
        decode_size: decode JPEGs at the smallest reduced DCT scale whose shorter side stays
            >= this (for pipelines that start with ``Resize(decode_size)``; ``None``: full size).
        max_pixels: refuse images declaring more pixels, before decoding.
        backend: the decoder (:data:`~glassnet.data.decode.BACKENDS`).
        cache: a cache folder of ``root`` (see the module docstring): read the decoded pixels
            from it (``loader``, ``is_valid_file``, ``decode_size`` and ``backend`` do not apply).

    Attributes: ``classes``, ``class_to_idx``, ``samples`` (= ``imgs``; ``(path, class_index)``),
    ``targets`` (list of int), ``skipped`` (``(path, reason)``, with ``on_error="skip"``).

    ``get_item(i, rng)`` applies the transform with ``rng``; ``ds[i]`` is
    ``get_item(i, sample_rng(0, 0, i))``.

    Shape:
        - ``ds[i]`` with ``transform=None``: x (C, H_i, W_i) uint8, C = 3 ("RGB") or 1 ("L"),
          each image its own size; y ``int``
        - with a transform: what the transform returns (e.g. (3, 224, 224) float32)
        - with ``cache``: x (C, size, size) uint8 before the transform
    """

    def __init__(self, root, transform=None, target_transform=None, extensions=IMG_EXTENSIONS, mode: str = "RGB",
                 on_error: str = "raise", loader=None, is_valid_file=None, *, allow_empty: bool = False,
                 decode_size: int | None = None, max_pixels: int = MAX_PIXELS, backend: str = "auto",
                 cache=None):
        check_decode_args("ImageFolder", mode, decode_size, backend, max_pixels)
        if on_error not in ("raise", "skip"):
            raise InvalidArgumentError(f"ImageFolder: on_error must be 'raise' or 'skip', got {on_error!r}")
        if loader is not None and not callable(loader):
            raise InvalidTypeError(f"ImageFolder: loader must be callable, got {type(loader).__name__}")
        if is_valid_file is not None:
            if extensions is not IMG_EXTENSIONS and extensions is not None:
                raise InvalidArgumentError("ImageFolder: give extensions or is_valid_file, not both")
            extensions = None
        self.root = os.path.expanduser(str(root))
        self.transform, self.target_transform = transform, target_transform
        self.mode, self.on_error, self.loader = mode, on_error, loader
        self.decode_size, self.max_pixels, self.backend = decode_size, max_pixels, backend
        self.extensions = extensions
        self.cache = None
        if cache is not None:
            self._open_cache(cache, extensions, is_valid_file)
            return
        self.classes, self.class_to_idx = find_classes(self.root)
        samples = make_dataset(self.root, self.class_to_idx, extensions, is_valid_file, allow_empty)
        self.skipped = []
        if on_error == "skip":
            reasons = verify_files([p for p, _ in samples], loader, max_pixels)
            self.skipped = [(p, why) for (p, _), why in zip(samples, reasons) if why is not None]
            if self.skipped:
                warnings.warn(skipped_message(f"ImageFolder({self.root})", self.skipped, len(samples)),
                              stacklevel=2)
                samples = [s for s, why in zip(samples, reasons) if why is None]
        self.samples = samples
        self.imgs = self.samples
        self.targets = [t for _, t in samples]

    def _open_cache(self, path, extensions, is_valid_file):
        from .image_cache import CacheError, ImageCache

        given = [name for name, value in (("loader", self.loader), ("is_valid_file", is_valid_file),
                                          ("decode_size", self.decode_size)) if value is not None]
        if self.backend != "auto":
            given.append("backend")
        if given:
            raise InvalidArgumentError(f"ImageFolder: {', '.join(given)} cannot be used with cache= (the cache "
                                       "holds pixels decoded when it was prepared)")
        self.cache = ImageCache(path, source=self.root, mode=self.mode)
        fix = f"rebuild it with: {self.cache.rebuild}"
        wanted = self.cache.extensions if extensions is None else \
            tuple(e.lower() for e in ((extensions,) if isinstance(extensions, str) else extensions))
        if set(wanted) != set(self.cache.extensions):
            raise CacheError(f"{self.cache.path}: the cache was built with the extensions "
                             f"{', '.join(self.cache.extensions)}, not {', '.join(wanted)}; {fix}")
        self.classes, self.class_to_idx = list(self.cache.classes), dict(self.cache.class_to_idx)
        self.skipped = [(os.path.join(self.cache.source, *rel.split("/")), why) for rel, why in self.cache.skipped]
        if self.skipped:
            who = f"ImageFolder({self.root}, cache={str(self.cache.path)!r})"
            if self.on_error == "raise":
                raise CacheError(f"{who}: the cache left out {len(self.skipped)} files that cannot be decoded "
                                 f"(e.g. {self.skipped[0][0]}); pass on_error='skip' to read it without them")
            warnings.warn(skipped_message(who, self.skipped, len(self.cache) + len(self.skipped)), stacklevel=3)
        self.samples = list(self.cache.samples)
        self.imgs = self.samples
        self.targets = list(self.cache.targets)

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, path):
        """The decoded image at ``path`` (or ``loader(path)``), before the transform."""
        if self.loader is not None:
            return self.loader(path)
        try:
            return decode_image(path, self.mode, decode_size=self.decode_size, max_pixels=self.max_pixels,
                                backend=self.backend)
        except DataFormatError as exc:
            if self.on_error == "skip":
                raise type(exc)(f"{exc} (the file passed the check when the dataset was built, "
                                "so it changed since; rebuild the dataset to skip it)") from exc
            raise

    def get_item(self, index, rng):
        """``(transform(image, rng=rng), target_transform(class_index))`` of sample ``index``."""
        i = _as_index(index, len(self), "ImageFolder")
        path, target = self.samples[i]
        raw = self.load(path) if self.cache is None else self.cache.read(i)
        x = apply_transform(self.transform, raw, batched=False, rng=rng)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return x, target

    def __getitem__(self, index):
        i = _as_index(index, len(self), "ImageFolder")
        return self.get_item(i, sample_rng(0, 0, i))

    def __repr__(self) -> str:
        return (f"ImageFolder(root={self.root!r}, n={len(self)}, classes={len(self.classes)}, mode={self.mode!r}, "
                f"{'' if self.cache is None else f'cache={str(self.cache.path)!r}, '}transform={self.transform!r})")
