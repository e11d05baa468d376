"""``glassnet.models``: the model zoo, built from ``glassnet.nn`` only.

    from glassnet.models import get_model, list_models
    model = get_model("mlp", num_classes=10)
    model = get_model("resnet18", weights="IMAGENET1K_V1")  # torchvision's weights
"""
from .alexnet import alexnet, alexnet_lecture, zfnet
from .googlenet import googlenet
from .lenet import lenet5
from .mlp import mlp
from .pattern import convnet_pattern
from .pretrained import load_pretrained
from .registry import get_model, list_models, register_model
from .resnet import resnet18, resnet34, resnet50, resnet101, resnet152
from .small_cnn import SmallCNN, small_cnn
from .vgg import vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from .weights import WeightsNotFoundError, get_weights, list_weights, weights_file

__all__ = ["get_model", "list_models", "register_model", "mlp", "small_cnn", "SmallCNN"]
__all__ += ["lenet5", "alexnet", "alexnet_lecture", "zfnet", "googlenet", "convnet_pattern"]
__all__ += ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
__all__ += ["load_pretrained", "weights_file", "get_weights", "list_weights", "WeightsNotFoundError"]
__all__ += ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
