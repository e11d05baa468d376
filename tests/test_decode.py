"""glassnet.data.decode: every format and mode against Pillow's convert (torchvision's pil_loader),
the 16-bit rule, both JPEG backends and reduced-DCT decoding, limits and broken files.

Photo-like images are generated here (smooth gradients + noise + shapes, JPEG quality 90);
no binary file is committed. `photo` and `write_photo` are reused by the other dataset tests.
"""
import io
import struct
import zlib

import numpy as np
import pytest

from tests.torch_oracle import require_module

require_module("PIL", "image")
from PIL import Image, ImageDraw  # noqa: E402

from glassnet.data import decode  # noqa: E402
from glassnet.data.decode import decode_image, jpeg_scale, verify_image  # noqa: E402
from glassnet.errors import DataFormatError, InvalidArgumentError, LimitExceededError  # noqa: E402

BACKENDS = ["pil"] + (["simplejpeg"] if decode.have_simplejpeg() else [])


def photo(w, h, seed=0):
    """A photo-like RGB PIL image: smooth colour fields, noise, a dozen hard-edged shapes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        a, b, p = rng.uniform(-1, 1, 3)
        img[..., c] = 128 + 60 * np.sin(a * x / w * 6 + b * y / h * 6 + p * 3) + 40 * (x / w - 0.5) * (c - 1)
    img += rng.normal(0, 8, img.shape)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(max(1, min(w, h) // 20), max(2, min(w, h) // 4)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)([x0 - r, y0 - r, x0 + r, y0 + r], fill=colour)
    return im


def jpeg_bytes(im, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def write_photo(path, w, h, seed=0, kind="rgb"):
    """Write a test image of one kind (see KINDS) to ``path``; return the path."""
    im = photo(w, h, seed)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP", ".gif": "GIF",
           ".tif": "TIFF", ".tiff": "TIFF"}[path.suffix.lower()]
    kw = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    if kind == "gray":
        im = im.convert("L")
    elif kind == "palette":
        im = im.convert("P", palette=Image.ADAPTIVE, colors=64)
    elif kind == "palette_t":
        im = im.convert("P", palette=Image.ADAPTIVE, colors=64)
        im.info["transparency"] = 3
        kw["transparency"] = 3
    elif kind == "rgba":
        a = np.asarray(im.convert("L"))
        im = Image.fromarray(np.dstack([np.asarray(im), a]), "RGBA")
    elif kind == "la":
        g = np.asarray(im.convert("L"))
        im = Image.fromarray(np.dstack([g, 255 - g]), "LA")
    elif kind == "cmyk":
        im = im.convert("CMYK")
    elif kind == "i16":
        im = Image.fromarray((np.asarray(im.convert("L")).astype(np.uint16) * 257 + 100).clip(0, 65535)
                             .astype(np.uint16))
    im.save(path, fmt, **kw)
    return path


KINDS = [("a.jpg", "rgb"), ("b.jpg", "gray"), ("c.jpg", "cmyk"), ("d.png", "rgb"), ("e.png", "gray"),
         ("f.png", "palette"), ("g.png", "palette_t"), ("h.png", "rgba"), ("i.png", "la"), ("j.bmp", "rgb"),
         ("k.webp", "rgb"), ("l.gif", "palette"), ("m.tif", "cmyk"), ("n.bmp", "palette")]


@pytest.mark.parametrize("name, kind", KINDS)
@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_format_and_mode_matches_pillows_convert(tmp_path, name, kind, mode, backend):
    path = write_photo(tmp_path / name, 37, 29, seed=len(name), kind=kind)
    x = decode_image(path, mode, backend=backend)
    with open(path, "rb") as f:                       # torchvision's pil_loader, and its "L" twin
        ref = np.asarray(Image.open(f).convert(mode))
    ref = ref[None] if ref.ndim == 2 else ref.transpose(2, 0, 1)
    assert x.dtype == np.uint8 and x.shape == ((3 if mode == "RGB" else 1), 29, 37)
    np.testing.assert_array_equal(x, ref)


def test_gif_gives_its_first_frame(tmp_path):
    frames = [photo(20, 16, seed=s).convert("P", palette=Image.ADAPTIVE) for s in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    first = np.asarray(Image.open(tmp_path / "anim.gif").convert("RGB")).transpose(2, 0, 1)
    np.testing.assert_array_equal(decode_image(tmp_path / "anim.gif"), first)


def test_16_bit_is_scaled_by_257(tmp_path):
    v = np.array([[0, 128, 129, 257, 385, 386, 32896, 65406, 65407, 65535]], np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    want = np.array([0, 0, 1, 1, 1, 2, 128, 254, 255, 255], np.uint8)     # (v + 128) // 257 = round(v / 257)
    np.testing.assert_array_equal(decode_image(tmp_path / "g16.png", "L")[0, 0], want)
    rgb = decode_image(tmp_path / "g16.png")
    assert rgb.shape == (3, 1, 10) and (rgb == want).all()
    k = np.arange(256, dtype=np.uint16)[None]                              # an 8-bit value k stored as 257 k
    Image.fromarray(k * 257).save(tmp_path / "k.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "k.png", "L")[0], k.astype(np.uint8))


def test_32_bit_int_and_float_images(tmp_path):
    Image.fromarray(np.array([[0, 257, 65535]], np.int32)).save(tmp_path / "i.tif")
    np.testing.assert_array_equal(decode_image(tmp_path / "i.tif", "L")[0, 0], [0, 1, 255])
    Image.fromarray(np.array([[0, 70000]], np.int32)).save(tmp_path / "big.tif")
    with pytest.raises(DataFormatError, match="big.tif.*0..70000"):
        decode_image(tmp_path / "big.tif")
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(decode_image(tmp_path / "f.tif", "L")[0, 0], [0, 128, 255])
    Image.fromarray(np.array([[2.0]], np.float32)).save(tmp_path / "f2.tif")
    with pytest.raises(DataFormatError, match=r"f2.tif.*\[0, 1\]"):
        decode_image(tmp_path / "f2.tif")


@pytest.mark.parametrize("w, h, size, want", [(500, 375, 256, 1), (500, 375, 187, 2), (500, 375, 94, 2),
                                               (500, 375, 93, 4), (2000, 1500, 256, 4), (2000, 1500, 128, 8),
                                               (2000, 1500, 1, 8), (100, 100, None, 1), (10, 10, 50, 1)])
def test_jpeg_scale_is_pillows_draft_rule(w, h, size, want):
    assert jpeg_scale(w, h, size) == want


@pytest.mark.parametrize("w, h", [(500, 375), (333, 250), (1001, 777), (64, 48)])
@pytest.mark.parametrize("decode_size", [None, 256, 128, 60, 20])
@pytest.mark.parametrize("mode, gray", [("RGB", False), ("L", False), ("RGB", True), ("L", True)])
def test_reduced_decoding_same_pixels_with_both_backends(w, h, decode_size, mode, gray):
    im = photo(w, h, seed=w)
    data = jpeg_bytes(im.convert("L") if gray else im)
    s = jpeg_scale(w, h, decode_size)
    ref_img = Image.open(io.BytesIO(data))
    if s > 1:
        ref_img.draft(ref_img.mode, (w // s, h // s))
    ref = np.asarray(ref_img.convert(mode))
    ref = ref[None] if ref.ndim == 2 else ref.transpose(2, 0, 1)
    assert ref.shape[1:] == (-(-h // s), -(-w // s))
    assert min(ref.shape[1:]) >= (decode_size or 0) or s == 1
    for backend in BACKENDS:
        np.testing.assert_array_equal(decode_image(data, mode, decode_size=decode_size, backend=backend), ref,
                                      err_msg=backend)


def test_output_is_a_chw_view_of_interleaved_memory(tmp_path):
    x = decode_image(jpeg_bytes(photo(40, 30)))
    assert x.shape == (3, 30, 40) and x.transpose(1, 2, 0).flags.c_contiguous


def _png_declaring(w, h) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_decompression_bomb_refused_before_decoding(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png_declaring(50000, 50000))
    with pytest.raises(LimitExceededError, match="bomb.png") as info:
        decode_image(tmp_path / "bomb.png")
    assert info.value.limit_name == "max_pixels"
    with pytest.raises(LimitExceededError, match="bomb.png"):
        verify_image(tmp_path / "bomb.png")
    data = jpeg_bytes(photo(64, 48))
    for backend in BACKENDS:
        with pytest.raises(LimitExceededError, match="3072 pixels, more than max_pixels=3000"):
            decode_image(data, max_pixels=3000, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_broken_files_name_the_file(tmp_path, backend):
    good = jpeg_bytes(photo(64, 48))
    cases = {"trunc.jpg": good[: len(good) // 2], "garbage.jpg": b"\xff\xd8\xff" + b"\x13" * 300,
             "empty.png": b"", "text.png": b"not an image at all", "png_trunc.png": _png_bytes()[:-40]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataFormatError, match=name):
            decode_image(tmp_path / name, backend=backend)
        with pytest.raises(DataFormatError, match=name):
            verify_image(tmp_path / name)
    with pytest.raises(DataFormatError, match="missing.jpg"):
        decode_image(tmp_path / "missing.jpg", backend=backend)


def _png_bytes():
    buf = io.BytesIO()
    photo(64, 48).save(buf, "PNG")
    return buf.getvalue()


def test_verify_accepts_what_decodes(tmp_path):
    for name, kind in KINDS:
        verify_image(write_photo(tmp_path / name, 33, 21, kind=kind))


def test_bad_arguments():
    data = jpeg_bytes(photo(8, 8))
    for kw in ({"mode": "RGBA"}, {"decode_size": 0}, {"decode_size": 2.5}, {"backend": "turbo"},
               {"max_pixels": 0}):
        with pytest.raises(InvalidArgumentError):
            decode_image(data, **kw)
