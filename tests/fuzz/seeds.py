"""Small valid files the fuzz targets start from, written by the real writers.

Each builder writes *cases* into ``seed_dir``: one sub-folder per case, holding
the case's files (a case is what one fuzz input is: relative path -> bytes).
They run in the parent process of a campaign, which may import torch (for real
``torch.save`` files) and Pillow; the fuzzed child never imports torch.
"""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np


def _case(seed_dir: Path, name: str, files: dict) -> None:
    folder = Path(seed_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def _tmp_bytes(write, suffix: str) -> bytes:
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / ("f" + suffix)
        write(p)
        return p.read_bytes()


def _arrays(rng):
    return {
        "w": rng.standard_normal((3, 2)).astype(np.float32),
        "b": np.arange(3, dtype=np.int64),
        "h": rng.standard_normal(4).astype(np.float16),
        "m": np.array([True, False, True]),
        "s": np.array(2.5, dtype=np.float64),
        "e": np.zeros((0, 3), np.uint8),
        "i": np.array([[1, -2]], dtype=np.int16),
    }


# ------------------------------------------------------------- state dicts
def build_safetensors(seed_dir: Path) -> None:
    from glassnet.io import save_state_dict_file

    rng = np.random.default_rng(0)
    arrays = _arrays(rng)
    _case(seed_dir, "all-dtypes", {"w.safetensors": _tmp_bytes(
        lambda p: save_state_dict_file(arrays, p, metadata={"format": "pt", "note": "x"}), ".safetensors")})
    _case(seed_dir, "one", {"w.safetensors": _tmp_bytes(
        lambda p: save_state_dict_file({"weight": np.ones((2, 2), np.float32)}, p), ".safetensors")})
    _case(seed_dir, "empty", {"w.safetensors": _tmp_bytes(lambda p: save_state_dict_file({}, p), ".safetensors")})
    try:  # a BF16 tensor as the safetensors package writes it
        import torch
        from safetensors.torch import save as st_save
        data = st_save({"bf": torch.arange(6, dtype=torch.bfloat16).reshape(2, 3),
                        "f": torch.ones(2, dtype=torch.float32)})
        _case(seed_dir, "bf16", {"w.safetensors": data})
    except ImportError:  # pragma: no cover
        pass


def build_npz(seed_dir: Path) -> None:
    from glassnet.io import save_state_dict_file

    rng = np.random.default_rng(1)
    arrays = _arrays(rng)
    _case(seed_dir, "glassnet", {"w.npz": _tmp_bytes(lambda p: save_state_dict_file(arrays, p), ".npz")})
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.arange(10, dtype=">i4"), f=np.asfortranarray(np.ones((2, 3), np.float64)))
    _case(seed_dir, "compressed", {"w.npz": buf.getvalue()})
    buf = io.BytesIO()
    np.savez(buf, c=np.array([1 + 2j], np.complex64), z=np.zeros((), np.uint64))
    _case(seed_dir, "plain", {"w.npz": buf.getvalue()})


def build_pth(seed_dir: Path) -> None:
    import torch

    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    bn = torch.nn.BatchNorm1d(2)
    sd = dict(lin.state_dict())
    sd.update({f"bn.{k}": v for k, v in bn.state_dict().items()})

    def save(obj, **kw):
        buf = io.BytesIO()
        torch.save(obj, buf, **kw)
        return buf.getvalue()

    _case(seed_dir, "state-dict", {"w.pth": save(sd)})
    opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    lin(torch.ones(1, 3)).sum().backward()
    opt.step()
    _case(seed_dir, "checkpoint", {"w.pth": save({"state_dict": lin.state_dict(), "epoch": 3, "lr": 0.1,
                                                 "optimizer": opt.state_dict(), "tags": ("a", None),
                                                 "blob": b"\x00\xff"})})
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    _case(seed_dir, "views-dtypes", {"w.pth": save({
        "module.t": base.t(), "module.row": base[1], "module.bf": base.to(torch.bfloat16),
        "module.h": base.half()[:, 1:3], "module.i": torch.tensor([1, 2], dtype=torch.int32),
        "module.b": torch.tensor([True]), "module.u": torch.tensor([7], dtype=torch.uint8),
        "module.z": torch.zeros(0, 2), "module.s": torch.tensor(1.5, dtype=torch.float64),
        "module.p": torch.nn.Parameter(torch.ones(2))})})
    _case(seed_dir, "empty", {"w.pth": save({})})
    _case(seed_dir, "legacy", {"w.pth": save({"w": torch.ones(2)}, _use_new_zipfile_serialization=False)})


# ------------------------------------------------------------- checkpoints
#: (optimizer, scheduler) combinations the checkpoint targets load into
COMBOS = ("sgd_step", "adam_plateau", "adamw_multistep", "sgd_cosine")


def make_training_objects(combo: str, seed: int = 0):
    """A small model with a BatchNorm buffer, an optimizer and a scheduler, as ``combo`` names them."""
    import glassnet as gn
    import glassnet.nn as nn
    from glassnet.optim import SGD, Adam, AdamW
    from glassnet.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR, ReduceLROnPlateau, StepLR

    gn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    if combo == "sgd_step":
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        sched = StepLR(opt, step_size=2, gamma=0.5)
    elif combo == "adam_plateau":
        opt = Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.99))
        sched = ReduceLROnPlateau(opt, patience=1)
    elif combo == "adamw_multistep":
        opt = AdamW(model.parameters(), lr=1e-2, amsgrad=True)
        sched = MultiStepLR(opt, milestones=[1, 3, 3], gamma=0.3)
    elif combo == "sgd_cosine":
        opt = SGD(model.parameters(), lr=0.1, momentum=0.5, nesterov=True)
        sched = CosineAnnealingLR(opt, T_max=5, eta_min=1e-3)
    else:
        raise KeyError(combo)
    return model, opt, sched


def train_step(model, opt, sched, seed: int = 0) -> None:
    """One forward/backward/step/scheduler step (what a resumed run does first)."""
    import glassnet as gn
    import glassnet.nn as nn
    from glassnet.optim.lr_scheduler import ReduceLROnPlateau

    rng = np.random.default_rng(seed)
    model.train()
    x = gn.tensor(rng.standard_normal((6, 4)).astype(np.float32))
    y = gn.tensor(rng.integers(0, 3, 6))
    loss = nn.CrossEntropyLoss()(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if isinstance(sched, ReduceLROnPlateau):
        sched.step(float(loss.data))
    else:
        sched.step()


def build_checkpoints(seed_dir: Path) -> None:
    import glassnet as gn
    from glassnet.io import save_checkpoint

    for k, combo in enumerate(COMBOS):
        model, opt, sched = make_training_objects(combo, seed=k)
        for step in range(2):
            train_step(model, opt, sched, seed=step)
        data = _tmp_bytes(lambda p: save_checkpoint(
            p.with_suffix(""), model, opt, sched, epoch=2, step=1, global_step=5,
            metrics={"history": [{"epoch": 1, "loss": float("nan")}], "best": float("inf")},
            config={"model": "test", "lr": 0.1}, rng_states={"glassnet": gn.random.get_rng_state()},
            extra={"sums": (1.5, 2)}), ".safetensors")
        _case(seed_dir, combo, {"ck.safetensors": data, "combo": combo.encode()})


# ---------------------------------------------------------------- run dirs
RUN_CONFIGS = {
    "mlp": {"model": "mlp", "model_kwargs": {"hidden": [8]}, "num_classes": 10, "in_channels": 1,
            "dataset": "fashion-mnist", "image_size": 28, "dtype": "float32"},
    "small_cnn": {"model": "small_cnn", "model_kwargs": {"width": 2, "hidden": 4}, "num_classes": 10,
                  "in_channels": 1, "dataset": "mnist", "classes": [str(i) for i in range(10)]},
}
HISTORY = [{"epoch": 1, "train_loss": 0.9, "val_accuracy": 0.7, "lr": 0.1},
           {"epoch": 2, "train_loss": 0.5, "val_accuracy": None, "lr": 0.05}]


def build_run_files(seed_dir: Path) -> None:
    for name, cfg in RUN_CONFIGS.items():
        _case(seed_dir, name, {"config.json": json.dumps(cfg, indent=2).encode(),
                               "history.json": json.dumps(HISTORY, indent=2).encode()})
    _case(seed_dir, "minimal", {"config.json": b'{"model": "mlp"}', "history.json": b"[]"})


def build_run_dirs(seed_dir: Path) -> None:
    import glassnet as gn
    from glassnet.io import save_checkpoint, save_state_dict_file
    from glassnet.models import get_model
    from glassnet.optim import SGD

    for name, cfg in RUN_CONFIGS.items():
        kwargs = dict(cfg["model_kwargs"], num_classes=cfg["num_classes"], in_channels=cfg["in_channels"])
        model = get_model(cfg["model"], **kwargs)
        config = json.dumps(cfg).encode()
        ck = _tmp_bytes(lambda p: save_checkpoint(p.with_suffix(""), model, SGD(model.parameters(), lr=0.1),
                                                  epoch=1, step=0, metrics={}, config=cfg,
                                                  rng_states={"glassnet": gn.random.get_rng_state()}),
                        ".safetensors")
        _case(seed_dir, f"{name}-best", {"config.json": config, "checkpoints/best.safetensors": ck})
        _case(seed_dir, f"{name}-last", {"config.json": config, "checkpoints/last.safetensors": ck})
        npz = _tmp_bytes(lambda p: save_state_dict_file(model.state_dict(), p), ".npz")
        _case(seed_dir, f"{name}-npz", {"config.json": config, "model.npz": npz})


# --------------------------------------------------------------------- IDX
def idx_bytes(array) -> bytes:
    from glassnet.data.idx import write_idx
    return _tmp_bytes(lambda p: write_idx(p, array), "")


def build_idx(seed_dir: Path) -> None:
    rng = np.random.default_rng(2)
    arrays = {
        "images": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "labels": np.array([0, 9, 3], np.uint8),
        "i8": np.array([-1, 2], np.int8),
        "i16": rng.integers(-999, 999, (2, 3), dtype=np.int16),
        "i32": rng.integers(-9, 9, (2, 1, 2, 1), dtype=np.int32),
        "f32": rng.standard_normal(5).astype(np.float32),
        "f64": rng.standard_normal((1, 2)),
        "empty": np.zeros((0, 4), np.uint8),
    }
    for name, a in arrays.items():
        raw = idx_bytes(a)
        _case(seed_dir, name, {"data": raw})
        _case(seed_dir, name + "-gz", {"data.gz": gzip.compress(raw, mtime=0)})


def build_mnist(seed_dir: Path) -> None:
    rng = np.random.default_rng(3)
    for n in (4, 1):
        images = idx_bytes(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        labels = idx_bytes(rng.integers(0, 10, n).astype(np.uint8))
        _case(seed_dir, f"raw-{n}", {"t10k-images-idx3-ubyte": images, "t10k-labels-idx1-ubyte": labels})
        _case(seed_dir, f"gz-{n}", {"t10k-images-idx3-ubyte.gz": gzip.compress(images, mtime=0),
                                    "t10k-labels-idx1-ubyte.gz": gzip.compress(labels, mtime=0)})


# ------------------------------------------------------------------ images
IMAGE_EXTS = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp", "GIF": "gif", "TIFF": "tif", "PPM": "ppm",
              "ICO": "ico", "WEBP": "webp", "TGA": "tga"}


def build_images(seed_dir: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(4)
    rgb = Image.fromarray(rng.integers(0, 256, (7, 5, 3), dtype=np.uint8), "RGB")
    rgba = Image.fromarray(rng.integers(0, 256, (6, 6, 4), dtype=np.uint8), "RGBA")
    gray = Image.fromarray(rng.integers(0, 256, (5, 9), dtype=np.uint8), "L")
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    pal.info["transparency"] = 0
    specs = [
        ("png-rgb", rgb, "PNG", {}), ("png-rgba-interlaced", rgba, "PNG", {"interlace": 1}),
        ("png-gray", gray, "PNG", {}), ("png-pal-trns", pal, "PNG", {"transparency": 0}),
        ("png-la", gray.convert("LA"), "PNG", {}), ("png-1bit", gray.convert("1"), "PNG", {}),
        ("png-i16", Image.fromarray((rng.integers(0, 65535, (4, 4))).astype(np.uint16)), "PNG", {}),
        ("jpeg-rgb", rgb, "JPEG", {"quality": 80}), ("jpeg-gray-progressive", gray, "JPEG", {"progressive": True}),
        ("bmp-rgb", rgb, "BMP", {}), ("bmp-pal", pal, "BMP", {}), ("bmp-rgba", rgba, "BMP", {}),
        ("gif-pal", pal, "GIF", {}), ("tiff-rgb", rgb, "TIFF", {}),
        ("tiff-lzw", gray, "TIFF", {"compression": "tiff_lzw"}),
        ("ppm-rgb", rgb, "PPM", {}), ("ico", rgba, "ICO", {"sizes": [(6, 6)]}), ("tga", rgb, "TGA", {}),
    ]
    try:
        from PIL import features
        if features.check("webp"):
            specs.append(("webp", rgba, "WEBP", {"lossless": True}))
    except Exception:  # pragma: no cover
        pass
    for name, img, fmt, kw in specs:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        _case(seed_dir, name, {f"image.{IMAGE_EXTS[fmt]}": buf.getvalue()})
    frames = [gray.convert("P"), gray.point(lambda v: 255 - v).convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=10, loop=0)
    _case(seed_dir, "gif-animated", {"image.gif": buf.getvalue()})
