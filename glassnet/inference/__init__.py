"""Using a trained run: its input pipeline and test set, its accuracy, predictions on image files, plots.

* :mod:`~glassnet.inference.run_inputs` -- what a run's model is fed (its evaluation pipeline,
  test set, ten-crop variant, batch size);
* :mod:`~glassnet.inference.evaluation` -- class probabilities, :func:`evaluate_run`, ensembles;
* :mod:`~glassnet.inference.images` -- :func:`load_image` (safe image decoding) and :func:`predict_images`;
* :mod:`~glassnet.inference.plots` -- :func:`make_plots`: curves, confusion matrix, filters, activations.

The ``glassnet evaluate``, ``predict`` and ``plot`` commands (:mod:`glassnet.commands`) parse
their options, call these and print the results.
"""
from .evaluation import ensemble_probabilities, evaluate_run, predict_probabilities
from .images import MAX_PIXELS, PillowMissingError, load_image, predict_images
from .plots import capture_activations, conv_layers, make_plots
from .run_inputs import (PHOTO_DATASETS, check_run_data_root, default_batch_size, is_photo_run, run_preprocess,
                         run_test_set, ten_crop_transform)

__all__ = ["ensemble_probabilities", "evaluate_run", "predict_probabilities",
           "MAX_PIXELS", "PillowMissingError", "load_image", "predict_images",
           "capture_activations", "conv_layers", "make_plots",
           "PHOTO_DATASETS", "check_run_data_root", "default_batch_size", "is_photo_run", "run_preprocess",
           "run_test_set", "ten_crop_transform"]
