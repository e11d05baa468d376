"""Fuzz glassnet.data.idx.read_idx on raw and gzip IDX files: any input bytes give a correct load or a
GlassnetError, within the memory cap and time limits (target "idx" in tests/fuzz/targets.py;
tests/fuzz/README.md has the big-campaign commands)."""
from tests.fuzz.runner import assert_clean


def test_fuzz_idx(tmp_path):
    assert_clean("idx", tmp_path)
