"""``glassnet.models``: the model zoo, built from ``glassnet.nn`` only.

    from glassnet.models import get_model, list_models
    model = get_model("mlp", num_classes=10)
"""
from .mlp import mlp
from .registry import get_model, list_models, register_model
from .small_cnn import SmallCNN, small_cnn

__all__ = ["get_model", "list_models", "register_model", "mlp", "small_cnn", "SmallCNN"]
