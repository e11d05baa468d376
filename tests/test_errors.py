"""The error family: every exception glassnet raises for bad input derives from GlassnetError.

Checked on the source itself, so a new ``raise ValueError(...)`` anywhere in the
package fails here rather than escaping to a user as a bare builtin.
"""
import ast
import inspect
import pathlib

import pytest

import glassnet
from glassnet import errors

PACKAGE = pathlib.Path(glassnet.__file__).parent
BUILTIN_BAD_INPUT = {"ValueError", "TypeError", "KeyError", "IndexError", "RuntimeError", "OSError",
                     "FileNotFoundError", "AssertionError", "Exception", "ImportError", "LookupError"}


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_no_builtin_exception_is_raised_directly():
    offenders = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and exc.id in BUILTIN_BAD_INPUT:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} raise {exc.id}")
    assert not offenders, "raise a glassnet.errors class instead:\n" + "\n".join(offenders)


def test_every_exception_class_in_the_package_is_a_glassnet_error():
    classes = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and (b.id.endswith("Error") or b.id == "Exception") for b in node.bases):
                classes.append((path, node.name))
    assert len(classes) >= 10
    import importlib

    bad = []
    for path, name in classes:
        mod_name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        cls = getattr(importlib.import_module(mod_name), name, None)
        if cls is None or not inspect.isclass(cls):
            continue  # a private helper defined in a function
        if name.startswith("_"):
            continue
        if not issubclass(cls, errors.GlassnetError):
            bad.append(f"{mod_name}.{name}")
    assert not bad, "these exception classes do not derive from glassnet.errors.GlassnetError: " + ", ".join(bad)


@pytest.mark.parametrize("cls, builtin", [
    (errors.ShapeError, ValueError), (errors.DataFormatError, ValueError), (errors.UsageError, ValueError),
    (errors.LimitExceededError, ValueError), (errors.InvalidTypeError, TypeError),
    (errors.UnknownNameError, KeyError), (errors.IndexOutOfRangeError, IndexError),
    (errors.StateDictError, RuntimeError), (errors.MissingDependencyError, ImportError),
])
def test_family_members_keep_their_builtin_base(cls, builtin):
    assert issubclass(cls, errors.GlassnetError) and issubclass(cls, builtin)


def test_unknown_name_error_prints_its_message_unquoted():
    assert str(errors.UnknownNameError("unknown model 'x'")) == "unknown model 'x'"


def test_layer_errors_are_in_the_family():
    from glassnet import models, nn

    with pytest.raises(errors.InvalidArgumentError, match="Conv2d: kernel_size"):
        nn.Conv2d(1, 1, 0)
    with pytest.raises(errors.InvalidArgumentError, match="Dropout: p"):
        nn.Dropout(2.0)
    with pytest.raises(errors.UnknownNameError, match="unknown model"):
        models.get_model("no_such_model")
