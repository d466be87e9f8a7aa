"""Results in words and documents: the augmentation experiment's report."""
