"""Segmentation's input error, on its own so that fitting, tuning and evaluation can all raise
it without importing one another."""


class SegmentationError(ValueError):
    """Features unusable for segmentation; the message names the column (and customer)."""


__all__ = ["SegmentationError"]
