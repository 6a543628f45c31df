"""How the book and the CLI show names: networks (short, the user's marked) and weights."""

from __future__ import annotations

import numpy as np
import pandas as pd

YOURS_MARK = " (yours)"  # after the name of a network the user evaluated beside a preset


def short_name(network: str) -> str:
    """A network's name for narrow tables and captions: efficientnet_lite0 -> lite0."""
    return network.replace("efficientnet_", "")


def shown_names(frame: pd.DataFrame) -> pd.Series:
    """The ``network`` column as the book shows it: short, and marked where ``yours`` is true."""
    mine = frame["yours"].eq(True) if "yours" in frame else pd.Series(False, index=frame.index)
    return frame["network"].astype(str).map(short_name) + np.where(mine, YOURS_MARK, "")


def shown_weights(weights: str) -> str:
    """A weights value as the book shows it: imagenet, random, or a weights file's name."""
    return weights if "/" not in str(weights) else f"file {str(weights).rsplit('/', 1)[-1]}"
