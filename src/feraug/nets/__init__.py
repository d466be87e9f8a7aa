"""Networks: generators, discriminators/critics and expression classifiers, built by name."""
