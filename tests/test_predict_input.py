"""`glassnet predict` against hostile and unusual image files.

Decompression bombs are refused from their declared size, before any pixel
is decoded (checked in a subprocess whose address space is capped at
256 MiB over its baseline); 16-bit, 32-bit and float images are read by
their real range; EXIF orientation is honoured; truncated, corrupt,
animated and unsupported files raise a glassnet error naming the file.
"""
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

PIL = pytest.importorskip("PIL", reason="glassnet predict needs Pillow (pip install glassnet[image])")
from PIL import Image  # noqa: E402

from glassnet.inference.images import MAX_PIXELS, load_image  # noqa: E402
from glassnet.errors import DataFormatError, GlassnetError, LimitExceededError  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width, height, color_type=0, rows=None) -> bytes:
    """A hand-built 8-bit PNG declaring ``width`` x ``height``; ``rows`` (an iterable of
    filtered scanlines) is stream-compressed, so a huge all-zero image stays small.
    Without ``rows`` the IDAT holds one row only (a bomb that is also truncated)."""
    channels = {0: 1, 2: 3}[color_type]
    if rows is None:
        rows = [bytes(1 + width * channels)]
    c = zlib.compressobj(1)
    idat = b"".join(c.compress(r) for r in rows) + c.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _old_load_image(path, in_channels=1, size=(28, 28)):
    """The reader before the fix, for ordinary 8-bit images: its output must not change."""
    with Image.open(path) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        img = img.convert("L" if in_channels == 1 else "RGB")
        h, w = size
        if img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
        a = np.asarray(img, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _raises_naming(exc_type, path, **kw):
    with pytest.raises(exc_type) as e:
        load_image(path, **kw)
    assert str(path) in str(e.value)
    return e.value


# --------------------------------------------------------------------------
# decompression bombs


def test_bomb_beyond_pillows_own_limit(tmp_path):
    # 50000 x 50000 in 300 bytes: Pillow's DecompressionBombError (not an OSError) used to escape
    bomb = _write(tmp_path / "bomb50k.png", _png(50000, 50000))
    assert bomb.stat().st_size < 1000
    err = _raises_naming(LimitExceededError, bomb)
    assert err.limit_name == "max_pixels"


def test_bomb_between_pillows_warning_and_error(tmp_path):
    # 100 M pixels: Pillow only warns and decodes (300 MB for RGB); refused now
    bomb = _write(tmp_path / "bomb10k.png", _png(10000, 10000, color_type=2))
    err = _raises_naming(LimitExceededError, bomb)
    assert err.limit_name == "max_pixels"


def test_bomb_below_pillows_warning_is_refused_by_max_pixels(tmp_path):
    bomb = _write(tmp_path / "bomb9k.png", _png(9000, 9000))
    err = _raises_naming(LimitExceededError, bomb)
    assert err.needed == 81_000_000 and err.limit == MAX_PIXELS
    assert "9000x9000" in str(err) and "max_pixels" in str(err)


def test_max_pixels_keyword(tmp_path):
    p = tmp_path / "small.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(p)
    assert load_image(p).shape == (1, 28, 28)
    err = _raises_naming(LimitExceededError, p, max_pixels=1000)
    assert err.needed == 4096
    # raising the limit lets a big image be decoded (Pillow fills the rows its zlib stream lacks with 0)
    big = _write(tmp_path / "big.png", _png(3000, 3000))
    _raises_naming(LimitExceededError, big, max_pixels=10**6)
    assert (load_image(big, max_pixels=10**7) == 0).all()


def test_bombs_stay_bounded_in_memory(tmp_path):
    """In a child capped at baseline + 256 MiB of address space: a real 9000x9000 RGB
    bomb (243 MB of pixels in a 1 MB file) and a 10000x10000 one are refused without
    decoding; the control (the same file with the limit lifted) does run out of memory."""
    if not sys.platform.startswith("linux"):
        pytest.skip("RLIMIT_AS and /proc/self/status are Linux's")
    row = bytes(1 + 9000 * 3)
    real = _write(tmp_path / "real9k.png", _png(9000, 9000, color_type=2, rows=(row for _ in range(9000))))
    assert real.stat().st_size < 2 << 20
    fake = _write(tmp_path / "bomb10k.png", _png(10000, 10000, color_type=2))
    script = textwrap.dedent(f"""
        import json, resource, sys
        from glassnet.inference.images import load_image
        from glassnet.errors import GlassnetError
        import PIL.Image, PIL.PngImagePlugin, numpy

        def vm():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

        resource.setrlimit(resource.RLIMIT_AS, (vm() + (256 << 20), resource.RLIM_INFINITY))
        out = {{}}
        for name, kw in (("real", {{}}), ("fake", {{}}), ("control", {{"max_pixels": 10**9}})):
            path = {str(real)!r} if name != "fake" else {str(fake)!r}
            try:
                load_image(path, **kw)
                out[name] = "loaded"
            except GlassnetError as exc:
                out[name] = type(exc).__name__ + ": " + str(exc)
            except MemoryError:
                out[name] = "MemoryError"
        print(json.dumps(out))
    """)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["real"].startswith("LimitExceededError") and str(real) in out["real"], out
    assert out["fake"].startswith("LimitExceededError") and str(fake) in out["fake"], out
    assert out["control"] == "MemoryError", out  # decoding it really does not fit under the cap


# --------------------------------------------------------------------------
# wide-range modes


def test_16bit_png_read_by_its_range(tmp_path):
    a16 = np.full((28, 28), 1000, np.uint16)
    a16[:14] = 65535
    p = tmp_path / "g16.png"
    Image.fromarray(a16).save(p)
    assert Image.open(p).mode == "I;16"
    got = load_image(p)
    assert got.dtype == np.uint8 and got.shape == (1, 28, 28)
    assert (got[0, :14] == 255).all()
    assert (got[0, 14:] == round(1000 / 65535 * 255)).all()  # 4, not the 255 a clip gives


def test_16bit_resized_matches_the_8bit_path(tmp_path):
    a8 = np.random.default_rng(0).integers(0, 256, (56, 70), dtype=np.uint8)
    p8, p16 = tmp_path / "a8.png", tmp_path / "a16.png"
    Image.fromarray(a8).save(p8)
    Image.fromarray(a8.astype(np.uint16) * 257).save(p16)
    diff = np.abs(load_image(p16).astype(int) - load_image(p8).astype(int))
    assert diff.max() <= 1
    assert load_image(p16, in_channels=3).shape == (3, 28, 28)


def test_int32_image(tmp_path):
    a = np.full((28, 28), 32768, np.int32)
    p = tmp_path / "i32.tif"
    Image.fromarray(a).save(p)
    assert Image.open(p).mode == "I"
    assert (load_image(p) == 128).all()
    Image.fromarray(np.full((28, 28), 70000, np.int32)).save(p)
    err = _raises_naming(DataFormatError, p)
    assert "70000" in str(err)


def test_float_image(tmp_path):
    a = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    p = tmp_path / "f.tif"
    Image.fromarray(a).save(p)
    assert Image.open(p).mode == "F"
    np.testing.assert_array_equal(load_image(p)[0], np.rint(a * 255).astype(np.uint8))
    for bad, what in ((a * 255, "0..255"), (np.where(a > 0.5, np.nan, a).astype(np.float32), "NaN")):
        Image.fromarray(bad.astype(np.float32)).save(p)
        err = _raises_naming(DataFormatError, p)
        assert what in str(err)


# --------------------------------------------------------------------------
# orientation, frames, modes, ordinary images


def test_exif_orientation_is_honoured(tmp_path):
    a = np.zeros((28, 28), np.uint8)
    a[:5, :] = 255  # a bright top band
    img = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "rotated.png"
    img.save(p, exif=exif)
    upright = tmp_path / "upright.png"
    img.transpose(Image.Transpose.ROTATE_270).save(upright)
    got = load_image(p)
    np.testing.assert_array_equal(got, load_image(upright))
    assert (got[0, :, -5:] == 255).all()  # the band is now on the right


def test_animated_gif_is_refused(tmp_path):
    frames = [Image.fromarray(np.full((28, 28), v, np.uint8)) for v in (0, 255)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100)
    assert "several frames" in str(_raises_naming(DataFormatError, p))


def test_unsupported_mode_is_refused(tmp_path):
    p = tmp_path / "lab.tif"
    Image.new("LAB", (28, 28)).save(p)
    assert "mode 'LAB'" in str(_raises_naming(DataFormatError, p))


def test_cmyk_is_read_through_pillow(tmp_path):
    p = tmp_path / "cmyk.tif"
    Image.new("CMYK", (30, 30), (0, 0, 0, 0)).save(p)  # no ink: white
    assert (load_image(p) == 255).all()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "1"])
@pytest.mark.parametrize("shape", [(28, 28), (43, 57)])
def test_ordinary_8bit_images_unchanged(tmp_path, mode, shape):
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, shape + (4,), dtype=np.uint8), "RGBA").convert(mode)
    p = tmp_path / f"img_{mode}.png"
    img.save(p)
    for channels in (1, 3):
        np.testing.assert_array_equal(load_image(p, in_channels=channels),
                                      _old_load_image(p, in_channels=channels))


# --------------------------------------------------------------------------
# corrupt files


def test_not_an_image_and_empty(tmp_path):
    for name, data in (("junk.png", b"not an image"), ("empty.png", b""),
                       ("html.jpg", b"<html>404</html>")):
        err = _raises_naming(DataFormatError, _write(tmp_path / name, data))
        assert "cannot read the image" in str(err)


def _sample_files(tmp_path):
    rng = np.random.default_rng(2)
    img = Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    out = {}
    for fmt, kw in (("png", {}), ("jpeg", {"quality": 90}), ("gif", {}), ("bmp", {}), ("tiff", {})):
        p = tmp_path / f"sample.{fmt}"
        img.save(p, format=fmt.upper(), **kw)
        out[fmt] = p.read_bytes()
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt metadata it skips
def test_truncated_and_bit_flipped_images(tmp_path):
    """Every truncation and a few hundred random bit flips: a (1, 28, 28) uint8 image or a
    glassnet error naming the file, never another exception."""
    rng = np.random.default_rng(3)
    target = tmp_path / "fuzzed"
    errors = 0
    for fmt, data in _sample_files(tmp_path).items():
        cuts = sorted(set(np.linspace(0, len(data) - 1, 60).astype(int).tolist()))
        variants = [data[:c] for c in cuts]
        for _ in range(60):
            flipped = bytearray(data)
            for pos in rng.integers(0, len(data), size=rng.integers(1, 4)):
                flipped[pos] ^= 1 << int(rng.integers(0, 8))
            variants.append(bytes(flipped))
        for blob in variants:
            target.write_bytes(blob)
            try:
                got = load_image(target)
            except GlassnetError as exc:
                assert str(target) in str(exc), exc
                errors += 1
                continue
            assert got.shape == (1, 28, 28) and got.dtype == np.uint8
    assert errors > 100  # the campaign does hit the error paths


# --------------------------------------------------------------------------
# the command


def test_predict_command_reports_bad_images(tmp_path, capsys):
    import glassnet as gn
    from glassnet.cli import main
    from glassnet.io import save_state_dict_file
    from glassnet.models import get_model

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "mlp", "model_kwargs": {"hidden": [8]},
                                                 "num_classes": 10, "in_channels": 1,
                                                 "dataset": "fashion-mnist"}))
    gn.manual_seed(0)
    state = get_model("mlp", num_classes=10, in_channels=1, hidden=[8]).state_dict()
    save_state_dict_file({"model." + k: np.asarray(v) for k, v in state.items()},
                         run / "checkpoints" / "best.safetensors")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(good)
    assert main(["predict", str(run), str(good)]) == 0
    capsys.readouterr()
    bomb = _write(tmp_path / "bomb.png", _png(50000, 50000))
    for argv, fragments in (([str(bomb)], [str(bomb), "max_pixels"]),
                            ([str(good), "--max-pixels", "100"], [str(good), "784 pixels"])):
        status = main(["predict", str(run)] + argv)
        err = capsys.readouterr().err.strip()
        assert status == 1 and "\n" not in err and "Traceback" not in err, err
        for fragment in fragments:
            assert fragment in err, (fragment, err)


def test_png_chunk_declaring_2_gib_does_not_allocate_it(tmp_path):
    """Found by tests/fuzz: Pillow's read(idat_length) on a real file allocated the declared 2 GiB;
    images are now opened from their bytes in memory, where read(n) returns what is there."""
    import base64
    import subprocess
    import sys

    png = tmp_path / "idat.png"
    png.write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVf////0lEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="))
    code = (
        "import resource, sys\n"
        "from glassnet.inference.images import load_image\n"
        "from glassnet.errors import GlassnetError\n"
        "vm = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + (512 << 20), vm + (512 << 20)))\n"
        "try:\n"
        f"    load_image({str(png)!r})\n"
        "    print('loaded')\n"
        "except GlassnetError as exc:\n"
        "    print('glassnet error', type(exc).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(("glassnet error", "loaded")), out.stdout
