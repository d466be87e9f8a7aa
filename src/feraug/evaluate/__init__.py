"""Evaluation: the classifier as a yardstick (prediction, metrics), the instrument that judges faces and labels
(:mod:`feraug.evaluate.instrument`) and the augmentation experiment (:mod:`feraug.evaluate.experiment`)."""
