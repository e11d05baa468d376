"""Fuzz glassnet.inference.images.load_image on fuzzed image files: any input bytes give a correct load
or a GlassnetError, within the memory cap and time limits (target "image" in tests/fuzz/targets.py;
tests/fuzz/README.md has the big-campaign commands)."""
import pytest

from tests.fuzz.runner import assert_clean


def test_fuzz_image(tmp_path):
    pytest.importorskip("PIL")
    assert_clean("image", tmp_path)
