"""The datasets: the registry of every set, the course's formulas, and loading them as arrays.

    registry.py   DATASETS, get_dataset, list_datasets: which sets exist and what each gives a network
    toy.py        the course's generated sets, one formula each
    loading.py    load_dataset, generate: a set as train and test arrays, reproducible from the seed
    locate.py, formats.py, digits.py, memory.py   MNIST-format files, drawn digits, memory checks

This package only re-exports; each name lives in the module above.
"""

from beanstrain.data.loading import (
    TEST_STREAM,
    TRAIN_STREAM,
    Dataset,
    check_samples,
    draw_bytes,
    generate,
    load_dataset,
)
from beanstrain.data.registry import (
    DATASETS,
    FEATURE_VECTORS,
    IMAGES,
    PIXEL_VECTORS,
    ImageSet,
    ToySet,
    get_dataset,
    is_image_dataset,
    list_datasets,
)

__all__ = ["DATASETS", "FEATURE_VECTORS", "IMAGES", "PIXEL_VECTORS", "TEST_STREAM", "TRAIN_STREAM", "Dataset",
           "ImageSet", "ToySet", "check_samples", "draw_bytes", "generate", "get_dataset", "is_image_dataset",
           "list_datasets", "load_dataset"]
