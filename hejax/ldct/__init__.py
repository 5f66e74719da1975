"""LDCT domain of hejax: data, RED-CNN models, training, metrics and weights.

This package is plaintext only: it simulates and reads CT images, defines and
trains the RED-CNN denoisers that hejax compiles, and measures image quality.
It imports no HE library and no part of the compiler.
"""

from hejax.ldct.data import (
    DoseConfig,
    dicom_pixel_size,
    example_pair,
    example_slice,
    example_slice_path,
    hu_to_unit,
    load_image,
    patch_batches,
    random_phantom,
    simulate_dataset,
    simulate_dose,
    simulate_pair,
    unit_to_hu,
)
from hejax.ldct.metrics import psnr, rmse, ssim
from hejax.ldct.models import PRESETS, REDCNN, VARIANTS, init_params, make_model
from hejax.ldct.pretrained import load_pretrained, save_params
from hejax.ldct.train import TrainConfig, TrainResult, denoise, evaluate, train_model

__all__ = [
    "PRESETS",
    "REDCNN",
    "VARIANTS",
    "DoseConfig",
    "TrainConfig",
    "TrainResult",
    "denoise",
    "dicom_pixel_size",
    "evaluate",
    "example_pair",
    "example_slice",
    "example_slice_path",
    "hu_to_unit",
    "init_params",
    "load_image",
    "load_pretrained",
    "make_model",
    "patch_batches",
    "psnr",
    "random_phantom",
    "rmse",
    "save_params",
    "simulate_dataset",
    "simulate_dose",
    "simulate_pair",
    "ssim",
    "train_model",
    "unit_to_hu",
]
