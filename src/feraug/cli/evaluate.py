"""``feraug evaluate``: score a trained classifier on one split."""

from __future__ import annotations

from pathlib import Path

import click

from feraug.cli.common import user_errors, with_label_source


@click.command("evaluate")
@click.option(
    "--run",
    "run_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A classifier run folder (from `feraug train classifier`).",
)
@click.option("--data", default=None, help="Data to split and evaluate on.  [default: the run's --data]")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--tta", is_flag=True, help="Ten-crop test-time augmentation.")
@click.option(
    "--checkpoint",
    type=click.Choice(["best", "last"]),
    default="best",
    show_default=True,
    help="The selected weights or the last epoch's.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@user_errors
def evaluate(run_dir: Path, data: str | None, split: str, tta: bool, checkpoint: str, device: str) -> None:
    """Score a trained classifier on one split of the standard splits; JSON and plots go to RUN/eval/."""
    from feraug.data import load_dataset, standard_splits
    from feraug.evaluate.classifier import evaluate_classifier, load_classifier
    from feraug.evaluate.metrics import metrics_table
    from feraug.train.device import resolve_device

    path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if not path.is_file():
        raise click.ClickException(f"{run_dir} has no checkpoints/{checkpoint}.pt: not a classifier run folder")
    net, info = load_classifier(path)
    trained_on = (info.get("config") or {}).get("data")
    data = data or trained_on
    if data is None:
        raise click.ClickException("--data is required: the run does not record which data it was trained on")
    run_cfg = info.get("config") or {}
    ds = with_label_source(load_dataset(data, size=net.size), run_cfg.get("labels"), run_cfg.get("ferplus"))
    splits = standard_splits(ds)
    subset = dict(zip(("train", "val", "test"), splits.datasets(ds), strict=True))[split]
    name = f"{split}{'_tta' if tta else ''}{'_last' if checkpoint == 'last' else ''}"
    metrics = evaluate_classifier(net, subset.with_note(splits.note), tta=tta, out_dir=run_dir / "eval", name=name,
                                  device=resolve_device(device), tta_padding=info.get("tta_padding"))  # fmt: skip
    click.echo(f"{checkpoint}.pt (epoch {info.get('epoch')}) on the {split} split of {ds.source} "
               f"({len(subset):,} faces{', ten-crop TTA' if tta else ''}):")  # fmt: skip
    click.echo(metrics_table(metrics))
    click.echo(f"split: {splits.note}")
    if trained_on is not None and data != trained_on:
        click.echo(f"note: trained on {trained_on}, evaluated on {data}")
    if split != "test":
        click.echo(f"note: the {split} split was {'trained' if split == 'train' else 'selected'} on, not a test score")
    click.echo(f"wrote {run_dir / 'eval' / f'{name}_metrics.json'} and plots")
