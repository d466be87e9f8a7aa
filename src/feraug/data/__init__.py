"""Data layer: FER2013 CSV and image-folder loaders, the built-in toy faces, splits, statistics."""

from feraug.data.classes import EMOTIONS, UnknownEmotionError, emotion_index, emotion_name
from feraug.data.dataset import SPLITS, FaceDataset
from feraug.data.fer2013 import Fer2013FormatError, load_fer2013_csv, write_fer2013_csv
from feraug.data.folders import ImageFolderError, load_image_folder, write_image_folder
from feraug.data.load import load_dataset
from feraug.data.splits import Splits, holdout_per_class, standard_splits
from feraug.data.stats import DatasetStats, dataset_stats
from feraug.data.toy import ToyFaceGenerator, make_toy_faces, render_pairs

__all__ = [
    "EMOTIONS", "SPLITS", "DatasetStats", "FaceDataset", "Fer2013FormatError", "ImageFolderError", "Splits",
    "ToyFaceGenerator", "UnknownEmotionError", "dataset_stats", "emotion_index", "emotion_name",
    "holdout_per_class", "load_dataset", "load_fer2013_csv", "load_image_folder", "make_toy_faces",
    "render_pairs", "standard_splits", "write_fer2013_csv", "write_image_folder",
]  # fmt: skip
