"""torchvision oracle for tests/test_transforms_photo.py, run in a separate interpreter that has torchvision.

    python tests/tv_oracle.py CASES.json IMAGES.npz OUT.npz

IMAGES.npz holds uint8 images (C, H, W), C = 1 or 3, turned into PIL images
("L" / "RGB") exactly as a torchvision pipeline sees a decoded photo.
CASES.json is a list of {"id", "op", "img", ...parameters}; for each case the
torchvision result is written to OUT.npz under its id, as (C, H, W) arrays
(stacked (K, C, h, w) for five/ten crops, (n, 4) int64 boxes for rrc_params).
Only numpy, Pillow, torch and torchvision are imported: never glassnet.
"""
import json
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F


def to_pil(chw):
    hwc = np.ascontiguousarray(chw.transpose(1, 2, 0))
    return Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc)


def to_chw(img):
    if isinstance(img, torch.Tensor):
        return img.numpy()
    a = np.asarray(img)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


JITTER = {0: F.adjust_brightness, 1: F.adjust_contrast, 2: F.adjust_saturation, 3: F.adjust_hue}


def run(case, images):
    op = case["op"]
    if op == "rrc_params":       # boxes from torchvision's own generator
        torch.manual_seed(case["seed"])
        dummy = torch.empty(1, case["H"], case["W"])
        return np.array([T.RandomResizedCrop.get_params(dummy, case["scale"], case["ratio"])
                         for _ in range(case["n"])], dtype=np.int64)
    img = to_pil(images[case["img"]])
    interp = InterpolationMode(case.get("interpolation", "bilinear"))
    if op == "resize":
        return to_chw(F.resize(img, case["size"], interp, max_size=case.get("max_size")))
    if op == "center_crop":
        return to_chw(F.center_crop(img, case["size"]))
    if op == "resized_crop":
        top, left, h, w = case["box"]
        return to_chw(F.resized_crop(img, top, left, h, w, case["size"], interp))
    if op == "hflip":
        return to_chw(F.hflip(img))
    if op == "jitter":
        for k in case["order"]:          # factors[k] is adjustment k's (None: off)
            if case["factors"][k] is not None:
                img = JITTER[k](img, case["factors"][k])
        return to_chw(img)
    if op in ("five_crop", "ten_crop"):
        crops = F.five_crop(img, case["size"]) if op == "five_crop" else \
            F.ten_crop(img, case["size"], vertical_flip=case.get("vertical_flip", False))
        return np.stack([to_chw(c) for c in crops])
    if op == "photo_pipeline":   # resized_crop (+ hflip) + ToTensor + Normalize
        top, left, h, w = case["box"]
        img = F.resized_crop(img, top, left, h, w, case["size"], interp)
        if case["flip"]:
            img = F.hflip(img)
        x = T.Normalize(case["mean"], case["std"])(T.ToTensor()(img))
        return x.numpy()
    raise SystemExit(f"tv_oracle: unknown op {op!r}")


def main(argv):
    cases_path, images_path, out_path = argv
    with open(cases_path) as f:
        cases = json.load(f)
    with np.load(images_path) as z:
        images = {k: z[k] for k in z.files}
    out = {c["id"]: run(c, images) for c in cases}
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(sys.argv[1:])
