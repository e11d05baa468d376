"""The ``Examples:`` (``>>>``) sections in the docstrings of the main public API run and print what they say.

Each listed module must keep at least one example, so they cannot silently vanish.
"""
import doctest
import importlib

import pytest

MODULES = [
    "glassnet.nn.linear",
    "glassnet.nn.activation",
    "glassnet.nn.pooling",
    "glassnet.nn.normalization",
    "glassnet.nn.container",
    "glassnet.nn.loss",
    "glassnet.nn.dropout",
    "glassnet.optim.sgd",
    "glassnet.optim.adam",
    "glassnet.optim.lr_scheduler.step",
    "glassnet.data.transforms.tensor",
    "glassnet.data.transforms.crops",
    "glassnet.data.transforms.geometry",
    "glassnet.models.registry",
    "glassnet.ops.pool.reference",
]

#: the objects whose docstrings must carry an example (module: names)
DOCUMENTED = {
    "glassnet.nn.linear": ["Linear"], "glassnet.nn.activation": ["ReLU"], "glassnet.nn.pooling": ["MaxPool2d"],
    "glassnet.nn.normalization": ["BatchNorm2d"], "glassnet.nn.container": ["Sequential"],
    "glassnet.nn.loss": ["CrossEntropyLoss"], "glassnet.nn.dropout": ["Dropout"], "glassnet.optim.sgd": ["SGD"],
    "glassnet.optim.adam": ["Adam"], "glassnet.optim.lr_scheduler.step": ["StepLR"],
    "glassnet.data.transforms.tensor": ["Normalize"], "glassnet.data.transforms.crops": ["CenterCrop"],
    "glassnet.data.transforms.geometry": ["RandomHorizontalFlip"], "glassnet.models.registry": ["get_model"],
}

FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=FLAGS, verbose=False, report=True)
    assert result.attempted > 0, f"{name} has no >>> examples left"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_the_main_classes_keep_their_examples(name):
    module = importlib.import_module(name)
    for obj in DOCUMENTED[name]:
        doc = getattr(module, obj).__doc__ or ""
        assert "Examples:" in doc and ">>>" in doc, f"{name}.{obj}: its docstring has no Examples: section"
