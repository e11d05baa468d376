"""Fuzz glassnet.data.MNIST / FashionMNIST on fuzzed IDX files: any input bytes give a correct load or
a GlassnetError, within the memory cap and time limits (target "mnist" in tests/fuzz/targets.py;
tests/fuzz/README.md has the big-campaign commands)."""
from tests.fuzz.runner import assert_clean


def test_fuzz_mnist(tmp_path):
    assert_clean("mnist", tmp_path)
