"""Data sets of the use cases, read through one data root (``DPL_DATA_ROOT``)."""

from .autoencoding import autoencoder_dataset
from .bapps import JND, JND_VAL, TWOAFC_TRAIN, TWOAFC_VAL, TwoAFC, bapps_2afc, bapps_jnd
from .core import DATASETS, DecodeCache, DatasetSpec, RemoteFile, dataset_path, read_image
from .crops import ImageCrops, centre_crop
from .nights import NightsTwoAFC, download_nights, nights_2afc
from .roads import MassRoads, imaged, road_files
from .sr import (SCALE, SRTestSet, SRTrainSet, centre_crop_pair, crop_pair, full_resolution_pair, training_pair,
                 upscale_bicubic)
from .synthetic import (PRESERVING, SEVERITY_DISTORTIONS, STRUCTURAL, equal_mse_2afc, make_equal_mse_2afc,
                        make_severity_2afc, severity_2afc)

__all__ = [
    "DATASETS", "ImageCrops", "SCALE", "centre_crop", "centre_crop_pair", "crop_pair", "imaged", "DatasetSpec", "DecodeCache", "JND", "JND_VAL", "MassRoads", "RemoteFile",
    "NightsTwoAFC", "SEVERITY_DISTORTIONS", "SRTestSet", "SRTrainSet", "TWOAFC_TRAIN", "TWOAFC_VAL", "TwoAFC",
    "autoencoder_dataset", "bapps_2afc", "bapps_jnd", "dataset_path", "full_resolution_pair", "training_pair",
    "make_severity_2afc", "download_nights", "nights_2afc", "read_image", "PRESERVING", "STRUCTURAL", "equal_mse_2afc", "make_equal_mse_2afc", "road_files", "severity_2afc", "upscale_bicubic",
]
