"""What every embedder is: a name and ``embed(features, options) -> (n, dim)`` vectors."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class Embedder:
    """Turns the feature rows of decoded images into vectors (one row per image).

    ``features`` are rows of ``ctx.features`` (their ``path`` column names the files);
    ``options`` are the run's feature options (``cache_dir``, ``use_cache``, ``workers``,
    ``progress``, ``max_pixels``), which model-backed embedders use to run and cache the model.
    A row of NaN means the image gave no vector.
    """

    name: str = ""

    def embed(self, features: pd.DataFrame, options: dict[str, Any] | None = None) -> np.ndarray:
        """(len(features), dim) float32 vectors for rows of images that decoded."""
        raise NotImplementedError
