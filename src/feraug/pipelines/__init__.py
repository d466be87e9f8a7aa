"""Whole runs that chain the layers and write every file: the augmentation experiment with its report, the
comparison of synthetic sets, and the sweep over GAN presets (:mod:`feraug.demo` is one more)."""
