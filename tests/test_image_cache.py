"""The decoded-image cache: prepare_image_cache / `glassnet prepare` and ImageCache.

Same pixels as ImageFolder + Resize + CenterCrop (and as torchvision's, where its interpreter is
there), whatever the number of workers; stale, truncated and foreign caches refused with the
command that rebuilds them; kill -9 and Ctrl-C mid-prepare leave no cache that looks valid and
no worker process behind."""
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from tests.test_image_folder import make_tree, torchvision_folder
from tests.torch_oracle import require_module

require_module("PIL", "image")

from glassnet import cli  # noqa: E402
from glassnet.data import (CacheError, DataLoader, ImageCache, ImageFolder, prepare_image_cache,  # noqa: E402
                           transforms as T)
from glassnet.data.sample_rng import sample_rng  # noqa: E402
from glassnet.errors import DataFormatError, InvalidArgumentError  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def folder(root, n=8):
    kinds = [("png", "rgba"), ("jpg", "rgb"), ("png", "gray"), ("jpg", "gray"), ("png", "rgb")]
    spec = {f"{'bird' if k % 3 else 'ape'}/{k}.{kinds[k % 5][0]}": kinds[k % 5][1] for k in range(n)}
    return make_tree(root, spec)


@pytest.fixture
def src(tmp_path):
    return folder(tmp_path / "photos")


def test_cache_equals_folder_resize_and_centre_crop(src, tmp_path):
    out = prepare_image_cache(src, tmp_path / "cache", size=12, workers=1, progress=False)
    cache = ImageCache(out)
    ref = ImageFolder(src, transform=T.Compose([T.Resize(12), T.CenterCrop(12)]))
    assert cache.images.shape == (8, 3, 12, 12) and cache.images.dtype == np.uint8
    assert cache.classes == ref.classes and cache.class_to_idx == ref.class_to_idx
    assert cache.samples == ref.samples and cache.targets == ref.targets and cache.source == str(src)
    for i in range(len(ref)):
        x, y = cache[i]
        np.testing.assert_array_equal(x, ref[i][0])
        assert y == ref.targets[i] and x.flags.writeable
    loaded = np.load(out / json.loads((out / "index.json").read_text())["images"], mmap_mode="r")
    np.testing.assert_array_equal(loaded, cache.images)                  # a standard .npy file


def test_same_pixels_as_torchvision(src, tmp_path):
    cache = ImageCache(prepare_image_cache(src, tmp_path / "cache", size=10, workers=1, progress=False))
    _, images = torchvision_folder(src, tmp_path, size=10)
    np.testing.assert_array_equal(cache.images, np.stack(images))


def test_workers_do_not_change_the_bytes(tmp_path):
    src = folder(tmp_path / "p", n=70)
    one = ImageCache(prepare_image_cache(src, tmp_path / "c1", size=9, workers=1, progress=False))
    two = ImageCache(prepare_image_cache(src, tmp_path / "c2", size=9, workers=2, progress=False))
    np.testing.assert_array_equal(one.images, two.images)
    gray = ImageCache(prepare_image_cache(src, tmp_path / "c3", size=9, mode="L", workers=2, progress=False))
    assert gray.images.shape == (70, 1, 9, 9)
    fast = ImageCache(prepare_image_cache(src, tmp_path / "c4", size=9, fast_decode=True, progress=False))
    assert fast.images.shape == one.images.shape


def test_transforms_rng_and_dataloader(src, tmp_path):
    tf = T.Compose([T.RandomResizedCrop(8), T.RandomHorizontalFlip(), T.ToFloat()])
    cache = ImageCache(prepare_image_cache(src, tmp_path / "c", size=12, progress=False), transform=tf,
                       target_transform=lambda y: y + 100)
    a, ya = cache.get_item(4, sample_rng(3, 1, 4))
    np.testing.assert_array_equal(a, cache.get_item(4, sample_rng(3, 1, 4))[0])
    assert a.shape == (3, 8, 8) and ya == cache.targets[4] + 100
    np.testing.assert_array_equal(cache[4][0], cache.get_item(4, sample_rng(0, 0, 4))[0])
    xs = [x for x, _ in DataLoader(cache, batch_size=3, seed=3)]
    assert [x.shape[0] for x in xs] == [3, 3, 2]
    cache.target_transform = None
    clone = pickle.loads(pickle.dumps(cache))
    assert len(pickle.dumps(cache)) < 20000 and clone._images is None        # the pixels are not pickled
    np.testing.assert_array_equal(clone.get_item(4, sample_rng(3, 1, 4))[0], a)


def test_stale_caches_are_refused_with_the_rebuild_command(src, tmp_path):
    out = prepare_image_cache(src, tmp_path / "c", size=12, progress=False)
    ImageCache(out)
    victim = next(p for p in sorted((src / "bird").iterdir()))
    os.utime(victim, ns=(10**9, 10**9))
    with pytest.raises(CacheError, match=rf"stale.*1 modified.*glassnet prepare {src} --size 12 --mode RGB --out {out}"):
        ImageCache(out)
    assert len(ImageCache(out, source=None)) == 8                     # asked not to check
    prepare_image_cache(src, out, size=12, progress=False)           # rebuilt in place
    (src / "ape" / "new.png").write_bytes((src / "ape" / "0.png").read_bytes())
    with pytest.raises(CacheError, match="1 files added"):
        ImageCache(out)
    os.remove(src / "ape" / "new.png")
    os.remove(victim)
    with pytest.raises(CacheError, match="1 removed"):
        ImageCache(out)
    other = folder(tmp_path / "other", n=3)
    with pytest.raises(CacheError, match="stale"):
        ImageCache(out, source=other)
    os.rename(src, tmp_path / "moved")                                # the photos gone: read as is
    assert len(ImageCache(out)) == 8


def test_truncated_foreign_and_broken_caches(src, tmp_path):
    out = prepare_image_cache(src, tmp_path / "c", size=12, progress=False)
    index = json.loads((out / "index.json").read_text())
    images = out / index["images"]
    with pytest.raises(CacheError, match="not an image cache.*glassnet prepare"):
        ImageCache(tmp_path)
    with pytest.raises(CacheError, match="not a folder"):
        ImageCache(tmp_path / "nowhere")
    data = images.read_bytes()
    images.write_bytes(data[:-100])
    with pytest.raises(CacheError, match=f"truncated.*rebuild it with: glassnet prepare {src}"):
        ImageCache(out)
    images.write_bytes(data + b"x")
    with pytest.raises(CacheError, match="longer than"):
        ImageCache(out)
    images.write_bytes(b"not npy" + data)
    with pytest.raises(CacheError, match="not a .npy"):
        ImageCache(out)
    np.save(images, np.zeros((8, 3, 12, 11), np.uint8))
    with pytest.raises(CacheError, match=r"\(8, 3, 12, 11\)"):
        ImageCache(out)
    os.remove(images)
    with pytest.raises(CacheError, match="missing"):
        ImageCache(out)
    for change, match in [({"format": "something-else"}, "not a glassnet image cache"),
                          ({"version": 99}, "version 99"), ({"samples": [["a", 5]] * 8}, "sample row"),
                          ({"shape": [7, 3, 12, 12]}, "do not agree"), ({"images": "../x.npy"}, "inside the cache"),
                          ({"size": "12"}, '"size"')]:
        (out / "index.json").write_text(json.dumps({**index, **change}))
        with pytest.raises(CacheError, match=match):
            ImageCache(out)
    for text in ("{not json", "[" * 50 + "]" * 50):
        (out / "index.json").write_text(text)
        with pytest.raises(DataFormatError):
            ImageCache(out)


def test_bad_files_raise_or_are_skipped(tmp_path):
    src = folder(tmp_path / "p")
    (src / "ape" / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    with pytest.raises(DataFormatError, match="broken.jpg.*--skip-bad"):
        prepare_image_cache(src, tmp_path / "c", size=12, progress=False)
    assert not list((tmp_path / "c").iterdir())                       # nothing left behind
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = ImageCache(prepare_image_cache(src, tmp_path / "c", size=12, workers=2, on_error="skip",
                                               progress=False))
    assert len(caught) == 1 and "broken.jpg" in str(caught[0].message)
    assert [p for p, _ in cache.skipped] == ["ape/broken.jpg"] and len(cache) == 8
    with pytest.warns(UserWarning, match="broken.jpg"):
        ref = ImageFolder(src, on_error="skip", transform=T.Compose([T.Resize(12), T.CenterCrop(12)]))
    assert cache.samples == ref.samples
    np.testing.assert_array_equal(cache.images, np.stack([ref[i][0] for i in range(len(ref))]))
    assert "--skip-bad" in ImageCache(cache.path).rebuild


def test_output_folder_rules(src, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("precious")
    with pytest.raises(InvalidArgumentError, match="not an image cache"):
        prepare_image_cache(src, tmp_path / "busy", size=8, progress=False)
    with pytest.raises(InvalidArgumentError, match="inside the folder"):
        prepare_image_cache(src, src / "cache", size=8, progress=False)
    for kw in ({"size": 0}, {"mode": "CMYK"}, {"workers": 0}, {"on_error": "ignore"}):
        with pytest.raises(InvalidArgumentError):
            prepare_image_cache(src, tmp_path / "c", **{"size": 8, **kw})
    out = prepare_image_cache(src, tmp_path / "c", size=8, progress=False)
    reader = ImageCache(out)
    before = np.array(reader.images)
    prepare_image_cache(src, out, size=10, progress=False)           # rebuilt: one images file left
    assert len(list(out.glob("images-*"))) == 1 and ImageCache(out).size == 10
    np.testing.assert_array_equal(reader.images, before)              # an open reader keeps its pixels


def test_cli(src, tmp_path, capsys):
    out = tmp_path / "c"
    assert cli.main(["prepare", str(src), "--size", "12", "--out", str(out), "--no-progress", "--workers", "2"]) == 0
    assert f"wrote {out}: 8 images of 3x12x12" in capsys.readouterr().out
    assert len(ImageCache(out)) == 8
    assert cli.main(["prepare", str(src), "--size", "0", "--out", str(out)]) == 2
    assert "--size must be >= 1" in capsys.readouterr().err
    (src / "bird" / "zz.png").write_bytes(b"junk")
    assert cli.main(["prepare", str(src), "--size", "12", "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "zz.png" in err
    assert cli.main(["prepare", str(src), "--size", "12", "--out", str(out), "--no-progress", "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "1 files skipped" in captured.out and "warning:" in captured.err and "zz.png" in captured.err


# ------------------------------------------------------------------ interrupted prepare
CHILD = r'''
import sys, time
from glassnet.data import cache_rows
from glassnet.data.cache_prepare import prepare_image_cache
real = cache_rows._run
def slow(chunk):
    time.sleep(0.15)
    return real(chunk)
cache_rows._run = slow
cache_rows.CHUNK = 2
prepare_image_cache(sys.argv[1], sys.argv[2], size=12, workers=int(sys.argv[3]), progress=False)
print("finished", flush=True)
'''


def _processes_with(marker):
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


def _start(src, out, workers, marker):
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(src), str(out), str(workers), marker],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(out.glob("*.part")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.4)                                                   # well into the decoding
    assert proc.poll() is None, proc.communicate()
    return proc


def _no_orphans(marker):
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_with(marker), "a prepare worker outlived its main process"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_mid_prepare_leaves_no_valid_cache(tmp_path, workers):
    src = folder(tmp_path / "p", n=40)
    out, marker = tmp_path / "c", f"gn-kill-test-{os.getpid()}-{workers}"
    proc = _start(src, out, workers, marker)
    proc.kill()
    proc.wait()
    _no_orphans(marker)
    assert not (out / "index.json").exists()
    with pytest.raises(CacheError, match="interrupted glassnet prepare"):
        ImageCache(out)
    prepare_image_cache(src, out, size=12, progress=False)           # a rerun completes and cleans up
    assert sorted(p.suffix for p in out.iterdir()) == [".json", ".npy"]
    good = np.array(ImageCache(out).images)
    proc = _start(src, out, workers, marker)                           # killed while rebuilding
    proc.kill()
    proc.wait()
    _no_orphans(marker)
    np.testing.assert_array_equal(ImageCache(out).images, good)        # the previous cache is intact


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_mid_prepare_cleans_up(tmp_path):
    src = folder(tmp_path / "p", n=100)  # ~4 s of decoding with 2 workers: the signal lands mid-prepare on a loaded machine too
    out, marker = tmp_path / "c", f"gn-int-test-{os.getpid()}"
    proc = _start(src, out, 2, marker)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and b"KeyboardInterrupt" in err
    _no_orphans(marker)
    assert list(out.iterdir()) == []


def test_worker_processes_give_the_same_batches(tmp_path):
    src = folder(tmp_path / "p", n=20)
    tf = T.Compose([T.RandomResizedCrop(8), T.RandomHorizontalFlip(), T.ToFloat()])
    cache = ImageCache(prepare_image_cache(src, tmp_path / "c", size=12, progress=False), transform=tf)
    for ds in (ImageFolder(src, transform=tf), cache):
        serial = [(x.copy(), y.copy()) for x, y in DataLoader(ds, batch_size=4, shuffle=True, seed=1)]
        workers = [(x.copy(), y.copy()) for x, y in DataLoader(ds, batch_size=4, shuffle=True, seed=1, num_workers=2)]
        assert len(serial) == len(workers) == 5
        for (xa, ya), (xb, yb) in zip(serial, workers):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_image_folder_reads_its_cache_with_the_same_transforms(src, tmp_path):
    out = prepare_image_cache(src, tmp_path / "c", size=12, progress=False)
    tf = T.Compose([T.RandomResizedCrop(8), T.RandomHorizontalFlip(), T.ToFloat()])
    cached = ImageFolder(src, transform=tf, target_transform=lambda y: y + 10, cache=out)
    decoded = ImageFolder(src, transform=T.Compose([T.Resize(12), T.CenterCrop(12), tf]),
                          target_transform=lambda y: y + 10)
    assert isinstance(cached.cache, ImageCache) and len(cached) == len(decoded) == 8  # the CLI's reader
    assert cached.classes == decoded.classes and cached.class_to_idx == decoded.class_to_idx
    assert cached.samples == decoded.samples and cached.targets == decoded.targets and cached.imgs is cached.samples
    cli_reader = ImageCache(out, transform=tf)
    for i in range(len(cached)):
        x, y = cached.get_item(i, sample_rng(5, 2, i))
        ref, ref_y = decoded.get_item(i, sample_rng(5, 2, i))
        np.testing.assert_array_equal(x, ref)
        np.testing.assert_array_equal(x, cli_reader.get_item(i, sample_rng(5, 2, i))[0])
        assert y == ref_y == decoded.targets[i] + 10
    np.testing.assert_array_equal(cached[3][0], decoded[3][0])
    plain = ImageFolder(src, cache=out)
    assert plain[0][0].shape == (3, 12, 12) and plain[0][0].dtype == np.uint8 and "cache=" in repr(plain)
    clone = pickle.loads(pickle.dumps(plain))                           # what a worker receives
    assert clone.cache._images is None
    np.testing.assert_array_equal(clone[5][0], plain[5][0])


def test_image_folder_refuses_a_stale_foreign_or_mismatched_cache(src, tmp_path):
    out = prepare_image_cache(src, tmp_path / "c", size=12, progress=False)
    other = folder(tmp_path / "other", n=6)
    with pytest.raises(CacheError, match=rf"stale.*{other}.*glassnet prepare {other} --size 12 --mode RGB --out {out}"):
        ImageFolder(other, cache=out)                                  # another folder's cache
    with pytest.raises(CacheError, match=r"extensions .*\.png.*rebuild it with: glassnet prepare"):
        ImageFolder(src, extensions=(".png",), cache=out)
    with pytest.raises(InvalidArgumentError, match="loader, decode_size cannot be used with cache="):
        ImageFolder(src, loader=lambda p: p, decode_size=8, cache=out)
    with pytest.raises(CacheError, match="not an image cache"):
        ImageFolder(src, cache=tmp_path)
    victim = sorted((src / "ape").iterdir())[0]
    os.utime(victim, ns=(10**9, 10**9))
    with pytest.raises(CacheError, match=rf"stale.*1 modified.*glassnet prepare {src} --size 12 --mode RGB --out {out}"):
        ImageFolder(src, cache=out)


def test_image_folder_cache_with_skipped_files(tmp_path):
    src = folder(tmp_path / "p")
    (src / "ape" / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    with pytest.warns(UserWarning, match="broken.jpg"):
        out = prepare_image_cache(src, tmp_path / "c", size=12, on_error="skip", progress=False)
    with pytest.raises(CacheError, match=r"left out 1 files.*broken.jpg.*on_error='skip'"):
        ImageFolder(src, cache=out)
    with pytest.warns(UserWarning, match="broken.jpg") as caught:
        ds = ImageFolder(src, cache=out, on_error="skip")
    assert len(caught) == 1 and len(ds) == 8
    assert ds.skipped[0][0] == str(src / "ape" / "broken.jpg")


def test_image_folder_cache_batches_with_workers(tmp_path):
    src = folder(tmp_path / "p", n=12)
    tf = T.Compose([T.RandomResizedCrop(8), T.RandomHorizontalFlip(), T.ToFloat()])
    ds = ImageFolder(src, transform=tf, cache=prepare_image_cache(src, tmp_path / "c", size=12, progress=False))
    serial = [(x.copy(), y.copy()) for x, y in DataLoader(ds, batch_size=4, shuffle=True, seed=2)]
    workers = [(x.copy(), y.copy()) for x, y in DataLoader(ds, batch_size=4, shuffle=True, seed=2, num_workers=2)]
    assert len(serial) == len(workers) == 3
    for (xa, ya), (xb, yb) in zip(serial, workers):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
