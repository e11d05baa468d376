"""Published ImageNet weights of the zoo models: torchvision's files, found, fetched and checked.

    from glassnet.models import get_model, weights_file, list_weights
    model = get_model("resnet18", weights="IMAGENET1K_V1")   # or "DEFAULT"
    path = weights_file("vgg16", "DEFAULT", download=False)  # where the file is (or an error saying where to put it)

Every entry is torchvision's own: the same download address, and the file is
checked the way ``torch.hub`` checks it: the SHA-256 of the file must start
with the hex digits after the last ``-`` of its name (``resnet18-f37072fd.pth``
→ ``f37072fd``). ``.pth`` files are read without PyTorch
(:func:`glassnet.io.load_state_dict_file`); their keys map one to one onto the zoo.

Where files are looked for, in order (:func:`search_dirs`):

1. ``$GLASSNET_WEIGHTS`` if set, else ``~/.cache/glassnet/weights`` -- downloads go here;
2. torch's hub cache, ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch/hub/checkpoints``),
   so files PyTorch already downloaded are reused.

A missing file is downloaded (:func:`glassnet.data.download_url`: deadline, size
limit, temporary file renamed into place only once its hash is right) unless
``download=False`` or ``GLASSNET_OFFLINE=1``; ``GLASSNET_WEIGHTS_MIRROR`` (or
``mirror=``) replaces ``https://download.pytorch.org/models`` by another base
address. Offline, or when the download fails, :class:`WeightsNotFoundError`
gives the address and the exact path to save the file as.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFormatError, GlassnetError, UnknownNameError

__all__ = ["Weights", "WEIGHTS", "list_weights", "get_weights", "weights_file", "search_dirs", "download_dir",
           "sha256_file", "WeightsNotFoundError", "WeightsChecksumError", "BASE_URL"]

#: where torchvision publishes its weights
BASE_URL = "https://download.pytorch.org/models"
_HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's HASH_REGEX, searched in the file name
# glassnet.data.transforms' IMAGENET_MEAN / IMAGENET_STD (not imported: glassnet.models stays light)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsNotFoundError(GlassnetError, FileNotFoundError):
    """A weights file is not in any cache folder and could not (or may not) be downloaded."""


class WeightsChecksumError(DataFormatError):
    """A weights file's SHA-256 does not start with the prefix in its name (corrupt or another file)."""


@dataclass(frozen=True)
class Weights:
    """One published set of weights (torchvision's ``WeightsEnum`` member, as data).

    ``url`` is torchvision's download address; ``hash_prefix`` the SHA-256 prefix
    its file name carries; ``resize_size`` / ``crop_size`` / ``mean`` / ``std``
    the evaluation transform the accuracies ``acc1`` / ``acc5`` (ImageNet-1K
    val, percent) were measured with; ``file_size_mb`` the file's size in MiB.
    """

    model: str
    name: str
    url: str
    num_params: int
    acc1: float
    acc5: float
    resize_size: int
    file_size_mb: float
    crop_size: int = 224
    num_classes: int = 1000
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    @property
    def file_name(self) -> str:
        """The file's name, as torch.hub caches it (``resnet18-f37072fd.pth``)."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        """The hex digits the file's SHA-256 must start with (torch.hub's ``check_hash``)."""
        return _HASH_REGEX.search(self.file_name).group(1)

    @property
    def max_bytes(self) -> int:
        """A download's size limit: the published size plus 1 % and 1 MiB."""
        return int(self.file_size_mb * 1.01 * 2 ** 20) + 2 ** 20

    def transforms(self, dtype=None):
        """The evaluation pipeline these weights expect, for uint8 (C, H, W) RGB images of any
        size: ``Resize(resize_size)``, ``CenterCrop(crop_size)``, ``ToFloat``, ``Normalize(mean, std)``
        (torchvision's ``weights.transforms()``)."""
        from ..data import transforms as T

        return T.Compose([T.Resize(self.resize_size), T.CenterCrop(self.crop_size), T.ToFloat(dtype),
                          T.Normalize(self.mean, self.std)])


def _w(model, name, file, params, acc1, acc5, resize, size_mb):
    default = name.endswith("*")
    entry = Weights(model, name.rstrip("*"), f"{BASE_URL}/{file}", params, acc1, acc5, resize, size_mb)
    return entry, default


_TABLE = [  # torchvision 0.2x: model, weights (* = DEFAULT), file, parameters, acc@1, acc@5, resize, MiB
    _w("alexnet", "IMAGENET1K_V1*", "alexnet-owt-7be5be79.pth", 61100840, 56.522, 79.066, 256, 233.087),
    _w("vgg11", "IMAGENET1K_V1*", "vgg11-8a719046.pth", 132863336, 69.02, 88.628, 256, 506.84),
    _w("vgg11_bn", "IMAGENET1K_V1*", "vgg11_bn-6002323d.pth", 132868840, 70.37, 89.81, 256, 506.881),
    _w("vgg13", "IMAGENET1K_V1*", "vgg13-19584684.pth", 133047848, 69.928, 89.246, 256, 507.545),
    _w("vgg13_bn", "IMAGENET1K_V1*", "vgg13_bn-abd245e5.pth", 133053736, 71.586, 90.374, 256, 507.59),
    _w("vgg16", "IMAGENET1K_V1*", "vgg16-397923af.pth", 138357544, 71.592, 90.382, 256, 527.796),
    _w("vgg16_bn", "IMAGENET1K_V1*", "vgg16_bn-6c64b313.pth", 138365992, 73.36, 91.516, 256, 527.866),
    _w("vgg19", "IMAGENET1K_V1*", "vgg19-dcbb9e9d.pth", 143667240, 72.376, 90.876, 256, 548.051),
    _w("vgg19_bn", "IMAGENET1K_V1*", "vgg19_bn-c79401a0.pth", 143678248, 74.218, 91.842, 256, 548.143),
    _w("resnet18", "IMAGENET1K_V1*", "resnet18-f37072fd.pth", 11689512, 69.758, 89.078, 256, 44.661),
    _w("resnet34", "IMAGENET1K_V1*", "resnet34-b627a593.pth", 21797672, 73.314, 91.42, 256, 83.275),
    _w("resnet50", "IMAGENET1K_V1", "resnet50-0676ba61.pth", 25557032, 76.13, 92.862, 256, 97.781),
    _w("resnet50", "IMAGENET1K_V2*", "resnet50-11ad3fa6.pth", 25557032, 80.858, 95.434, 232, 97.79),
    _w("resnet101", "IMAGENET1K_V1", "resnet101-63fe2227.pth", 44549160, 77.374, 93.546, 256, 170.511),
    _w("resnet101", "IMAGENET1K_V2*", "resnet101-cd907fc2.pth", 44549160, 81.886, 95.78, 232, 170.53),
    _w("resnet152", "IMAGENET1K_V1", "resnet152-394f9c45.pth", 60192808, 78.312, 94.046, 256, 230.434),
    _w("resnet152", "IMAGENET1K_V2*", "resnet152-f82ba261.pth", 60192808, 82.284, 96.002, 232, 230.474),
    _w("googlenet", "IMAGENET1K_V1*", "googlenet-1378be20.pth", 6624904, 69.778, 89.53, 256, 49.731),
]
#: model name -> weights name -> :class:`Weights`
WEIGHTS: dict[str, dict[str, Weights]] = {}
_DEFAULT: dict[str, str] = {}
for _entry, _is_default in _TABLE:
    WEIGHTS.setdefault(_entry.model, {})[_entry.name] = _entry
    if _is_default:
        _DEFAULT[_entry.model] = _entry.name
del _entry, _is_default


def list_weights(model: str | None = None) -> list[str]:
    """``"model.WEIGHTS"`` for every published entry (``model`` given: that model's weights names,
    ``"DEFAULT"`` first, meaning the entry torchvision marks as its default)."""
    if model is None:
        return [f"{m}.{n}" for m in sorted(WEIGHTS) for n in WEIGHTS[m]]
    key = model.replace("-", "_").lower()
    return ["DEFAULT"] + list(WEIGHTS.get(key, {})) if key in WEIGHTS else []


def get_weights(model: str, weights="DEFAULT") -> Weights:
    """The :class:`Weights` entry of ``model`` named ``weights``: ``"DEFAULT"``, ``"IMAGENET1K_V1"``,
    torchvision's ``"ResNet18_Weights.IMAGENET1K_V1"`` spelling, or a :class:`Weights` itself.

    Raises :class:`~glassnet.errors.UnknownNameError` listing what exists.
    """
    key = model.replace("-", "_").lower()
    if isinstance(weights, Weights):
        if weights.model != key:
            raise UnknownNameError(f"weights {weights.model}.{weights.name} are for {weights.model!r}, "
                                   f"not for model {model!r}")
        return weights
    if key not in WEIGHTS:
        raise UnknownNameError(f"model {model!r} has no published weights; models with weights: "
                               f"{', '.join(sorted(WEIGHTS))}")
    name = str(weights).rsplit(".", 1)[-1].upper()
    name = _DEFAULT[key] if name == "DEFAULT" else name
    if name not in WEIGHTS[key]:
        raise UnknownNameError(f"model {model!r} has no weights {weights!r}; it has: "
                               f"{', '.join(list_weights(key))}")
    return WEIGHTS[key][name]


def download_dir() -> Path:
    """Where downloaded weights are saved: ``$GLASSNET_WEIGHTS``, else ``~/.cache/glassnet/weights``."""
    env = os.environ.get("GLASSNET_WEIGHTS")
    return Path(env).expanduser() if env else Path("~/.cache/glassnet/weights").expanduser()


def _torch_hub_dir() -> Path:
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        return Path(torch_home).expanduser() / "hub" / "checkpoints"
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(cache).expanduser() / "torch" / "hub" / "checkpoints"


def search_dirs() -> list[Path]:
    """The folders a weights file is looked for in: :func:`download_dir`, then torch's hub
    cache (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``) if it exists."""
    dirs = [download_dir()]
    hub = _torch_hub_dir()
    if hub.is_dir() and hub not in dirs:
        dirs.append(hub)
    return dirs


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
    """The hex SHA-256 of the file ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def _check_hash(path: Path, entry: Weights, what: str) -> None:
    digest = sha256_file(path)
    if not digest.startswith(entry.hash_prefix):
        raise WeightsChecksumError(
            f"{path}: SHA-256 {digest} does not start with {entry.hash_prefix}, the prefix in torchvision's "
            f"file name {entry.file_name}: the {what} is corrupt or another file; delete it and "
            f"download {entry.url} again")


def _offline() -> bool:
    return os.environ.get("GLASSNET_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def weights_file(model: str, weights="DEFAULT", *, download: bool = True, progress: bool = True,
                 check_hash: bool = True, mirror: str | None = None, deadline_s: float = 3600.0,
                 opener=None) -> Path:
    """The path of ``model``'s ``weights`` file, checked, downloading it if needed and allowed.

    Args:
        model, weights: as :func:`get_weights`.
        download: fetch a missing file (also off when ``GLASSNET_OFFLINE=1``).
        progress: a progress bar on stderr while downloading.
        check_hash: verify the SHA-256 prefix (of a cached file too, as it is read).
        mirror: base address replacing :data:`BASE_URL` (default ``$GLASSNET_WEIGHTS_MIRROR``).
        deadline_s, opener: passed to :func:`glassnet.data.download_url`.

    Raises :class:`WeightsNotFoundError` (not cached, download off or failed: the message
    gives the address and the path to save the file as) and :class:`WeightsChecksumError`.
    """
    from ..data.download import DownloadError, download_url

    entry = get_weights(model, weights)
    dirs = search_dirs()
    for folder in dirs:
        path = folder / entry.file_name
        if path.is_file():
            if check_hash:
                _check_hash(path, entry, "cached file")
            return path
    dest = dirs[0] / entry.file_name
    looked = ", ".join(str(d / entry.file_name) for d in dirs)
    mirror = mirror if mirror is not None else os.environ.get("GLASSNET_WEIGHTS_MIRROR")
    url = f"{mirror.rstrip('/')}/{entry.file_name}" if mirror else entry.url
    where = (f"download {url} yourself and save it as {dest} (or into the folder named by "
             f"$GLASSNET_WEIGHTS, or torch's hub cache)")
    if not download or _offline():
        why = "download=False" if not download else "GLASSNET_OFFLINE is set"
        raise WeightsNotFoundError(f"weights {entry.model}.{entry.name} are not cached (looked for {looked}) and "
                                   f"downloading is off ({why}): {where}")
    staging = dest.with_name(f".{entry.file_name}.unverified")
    try:
        download_url(url, staging, progress=progress, deadline_s=deadline_s, max_bytes=entry.max_bytes,
                     opener=opener)
        if check_hash:
            _check_hash(staging, entry, f"file downloaded from {url}")
        os.replace(staging, dest)
    except DownloadError as exc:
        raise WeightsNotFoundError(f"weights {entry.model}.{entry.name}: cannot download them ({exc}); "
                                   f"{where}") from exc
    except OSError as exc:
        raise WeightsNotFoundError(f"weights {entry.model}.{entry.name}: cannot save {dest} "
                                   f"({type(exc).__name__}: {exc}); {where}") from exc
    finally:
        if staging.exists():
            staging.unlink()
    return dest
