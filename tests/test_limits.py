"""glassnet.limits: the budget every reader charges, exact shape products, and the JSON depth check."""
import pytest

from glassnet.errors import DataFormatError, LimitExceededError
from glassnet.limits import ReadBudget, check_json_depth, default_max_bytes, nbytes_of


def test_budget_names_the_file_what_and_the_keyword():
    budget = ReadBudget("model.pth", max_bytes=100)
    budget.take(60, "tensor a")
    with pytest.raises(LimitExceededError, match=r"model\.pth: tensor b needs .* exceeds max_bytes=100") as info:
        budget.take(41, "tensor b")
    assert (info.value.limit_name, info.value.needed, info.value.limit) == ("max_bytes", 101, 100)


def test_default_limit_is_relative_to_the_file_size():
    assert default_max_bytes(0) == 1 << 30
    assert default_max_bytes(1 << 30) == 16 << 30


def test_shape_products_are_exact_and_checked():
    assert nbytes_of((2 ** 40, 2 ** 40), 4, "f", "t") == 2 ** 82  # no wrap-around
    assert nbytes_of((0, 2 ** 62), 8, "f", "t") == 0
    with pytest.raises(DataFormatError, match="65 dimensions"):
        nbytes_of((1,) * 65, 1, "f", "t")
    with pytest.raises(DataFormatError, match="negative"):
        nbytes_of((3, -1), 1, "f", "t")
    for bad in [(2.0,), (True,), ("3",), 5]:
        with pytest.raises(DataFormatError, match="not a list of integers"):
            nbytes_of(bad, 1, "f", "t")


@pytest.mark.parametrize("text, depth", [
    ("[]", 1), ("[[{}]]", 3), ('{"a": "[[[[["}', 1), ('["\\"[[[", [1]]', 2), ('"\\\\"', 0), ('["\\\\", [[]]]', 3),
])
def test_json_depth_ignores_brackets_inside_strings(text, depth):
    check_json_depth(text, "f", max_depth=depth)
    if depth:
        with pytest.raises(LimitExceededError, match=f"f: JSON nested more than {depth - 1} levels"):
            check_json_depth(text, "f", max_depth=depth - 1)


def test_json_depth_of_hostile_texts_is_refused_or_passed_in_one_pass():
    with pytest.raises(LimitExceededError):
        check_json_depth("[" * 1_000_000, "f")
    check_json_depth('\\"' * 200_000, "f")  # unclosed escaped quotes: linear, not quadratic
    check_json_depth('"' + "[" * 200_000, "f")  # an unclosed string holds no nesting


def test_a_limit_message_for_an_astronomical_size_still_prints():
    """Found by tests/fuzz: an IDX .gz header of 33 dims of 2**32-1 overflowed float formatting."""
    with pytest.raises(LimitExceededError, match="PiB"):
        ReadBudget("x.gz", max_bytes=10).take(2 ** 1100, "the payload")
