"""The data layer: load or generate interaction logs, index items, build sequences and splits.

numpy only (it also runs on the device for ``edge-rec benchmark --eval-data``).
"""

from edge_rec.data.errors import DataFormatError
from edge_rec.data.interactions import InteractionLog, write_interactions_csv
from edge_rec.data.loaders import FORMATS, detect_format, load_interactions
from edge_rec.data.sequences import SequenceDataset, left_pad, prepare_dataset
from edge_rec.data.split import EvalSet, LeaveLastOutSplit
from edge_rec.data.statistics import LogStatistics, compute_statistics
from edge_rec.data.synthetic import PRESETS, SyntheticPreset, generate_synthetic, get_preset
from edge_rec.data.vocabulary import OOV_INDEX, PAD_INDEX, Vocabulary

__all__ = [
    "DataFormatError",
    "EvalSet",
    "FORMATS",
    "InteractionLog",
    "LeaveLastOutSplit",
    "LogStatistics",
    "OOV_INDEX",
    "PAD_INDEX",
    "PRESETS",
    "SequenceDataset",
    "SyntheticPreset",
    "Vocabulary",
    "compute_statistics",
    "detect_format",
    "generate_synthetic",
    "get_preset",
    "left_pad",
    "load_interactions",
    "prepare_dataset",
    "write_interactions_csv",
]
