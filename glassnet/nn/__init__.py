"""``glassnet.nn``: modules, parameters, layers, losses, and init."""
from . import functional, init
from .activation import ELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv2d
from .container import ModuleList, Sequential
from .dropout import Dropout, Dropout2d
from .freeze import freeze, unfreeze
from .linear import Flatten, Identity, Linear, Maxout
from .loss import CrossEntropyLoss, MSELoss
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, LPPool2d, MaxPool2d

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList",
    "Conv2d",
    "MaxPool2d", "AvgPool2d", "LPPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
    "Linear", "Maxout", "Identity", "Flatten",
    "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "BatchNorm1d", "BatchNorm2d", "LocalResponseNorm", "Dropout2d",
    "Dropout", "MSELoss", "CrossEntropyLoss", "functional", "init",
]
