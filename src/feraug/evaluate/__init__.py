"""Evaluation: classification metrics, statistics, protocols and the augmentation experiment."""
