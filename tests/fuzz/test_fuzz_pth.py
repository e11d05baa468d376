"""Fuzz glassnet.io.pth.load_pth and load_state_dict_file on torch.save archives: any input bytes give
a correct load or a GlassnetError, within the memory cap and time limits (target "pth" in
tests/fuzz/targets.py; tests/fuzz/README.md has the big-campaign commands)."""
import pytest

from tests.fuzz.runner import assert_clean


def test_fuzz_pth(tmp_path):
    pytest.importorskip("torch")
    assert_clean("pth", tmp_path)
