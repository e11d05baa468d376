"""Named dataset statistics for :class:`Normalize` and :class:`PCALighting`.

All values are on the ``[0, 1]`` scale that :class:`ToFloat` produces.
"""

__all__ = ["FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "MNIST_MEAN", "MNIST_STD",
           "IMAGENET_MEAN", "IMAGENET_STD", "IMAGENET_PCA_EIGVAL", "IMAGENET_PCA_EIGVEC"]

#: Pixel mean / std of the Fashion-MNIST training set after ``ToFloat``.
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530
#: Pixel mean / std of the MNIST training set after ``ToFloat``.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

#: Per-channel (R, G, B) mean / std of ImageNet's training set after ``ToFloat``
#: (the values every torchvision ImageNet model was trained with).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Eigenvalues of the 3x3 covariance of ImageNet's RGB pixels (on ``[0, 1]``), largest first,
#: as fb.resnet.torch's ``Lighting`` uses them (AlexNet's "PCA colour augmentation").
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
#: The matching eigenvectors, one per **column**: row ``c`` holds channel ``c``'s (R, G, B)
#: component of each eigenvector, so the colour shift is ``IMAGENET_PCA_EIGVEC @ (alpha * eigval)``.
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
