"""``glassnet.summary`` is public at the top level, imported lazily; ``glassnet.analysis.summary`` still works."""
import subprocess
import sys

import pytest

import glassnet
import glassnet.nn as nn


def test_top_level_summary_is_the_analysis_one():
    from glassnet.analysis.summary import summary

    assert glassnet.summary is summary
    assert "summary" in glassnet.__all__
    s = glassnet.summary(nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU()), input_size=(3, 17, 17))
    assert s["0"].output_shape == (1, 8, 8, 8) and s["0"].receptive_field == (3, 3) and s["0"].jump == (2, 2)
    assert s["0"].algorithm == "im2col"  # stride 2: no Winograd algorithm applies


def test_import_glassnet_does_not_import_summary():
    code = ("import sys, glassnet; "
            "print('glassnet.analysis.summary' in sys.modules, 'glassnet.io.tracing' in sys.modules); "
            "glassnet.summary; print('glassnet.analysis.summary' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(glassnet.__file__).parent.parent)).stdout.split()
    assert out == ["False", "False", "True"]


def test_unknown_attribute_still_raises():
    with pytest.raises(AttributeError, match="no_such_thing"):
        glassnet.no_such_thing
