"""The ``feraug`` command: thin click wrappers that parse arguments and call the Python API.

Each command (or group of commands) lives in its own module and is attached to ``main`` here.
Errors that users cause (a bad file, an unknown emotion, a bad option value) are turned into a
one-line ``Error: ...`` and exit status 1 instead of a traceback.
"""

from __future__ import annotations

import click

from feraug import __version__
from feraug.cli import augment, checkpoint, data, demo, evaluate, experiment, export, instrument, synth, train


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="feraug")
def main() -> None:
    """feraug: synthesize facial-expression training faces with GANs and measure whether they help.

    DATA arguments accept a FER2013 CSV (.csv or .csv.gz), an image folder (root/<split>/<class>/*.png
    or root/<class>/*.png), or the built-in toy faces: toy, toy:N or toy:N:SEED.
    """


for command in (
    data.data,
    train.train,
    synth.translate,
    synth.sample_cmd,
    demo.demo,
    experiment.experiment,
    experiment.sweep,
    instrument.quality,
    instrument.select,
    instrument.filter_data,
    evaluate.evaluate,
    checkpoint.checkpoint_group,
    augment.augment,
    export.export,
):
    main.add_command(command)
