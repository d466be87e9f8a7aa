"""feraug: GAN-synthesized faces for better facial-expression classifiers, with honest evaluation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("feraug")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
