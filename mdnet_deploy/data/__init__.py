"""Data sets behind one spec string, and the one preprocessing path.

Importing this package needs numpy only; scikit-learn (digits) and Pillow
(image folders, resizing) are imported where they are used.
"""

from .dataset import Dataset, load_dataset, select_subset
from .preprocess import preprocess

__all__ = ["Dataset", "load_dataset", "preprocess", "select_subset"]
