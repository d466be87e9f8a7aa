"""``python -m feraug``: the CLI, also as ``torchrun --nproc_per_node N -m feraug train ...``."""

from feraug.cli import main

main()
