"""Does adding GAN-synthesized faces to the training set help a classifier — more than duplicating real ones?

:func:`~feraug.evaluate.experiment.run.run_experiment` trains the same classifier in three arms on identical
folds and seeds and scores them on the same real test faces (:mod:`~feraug.evaluate.experiment.arms`):

* ``baseline`` — the fold's real training faces;
* ``synthetic`` — plus the synthetic faces that pass the leakage guard (all of them, or with
  ``balance=T`` per class up to T training faces, never more than there are);
* ``oversample`` — plus, per class, exactly as many *duplicated real* training faces (seeded
  draw with replacement) as the synthetic arm added. Duplicating the ~500 real Disgust faces
  already lifts Disgust recall a lot, so a synthetic arm that beats the baseline has only shown
  that rebalancing helps; beating this arm shows the synthetic faces carry something new.

Leakage guard: a synthetic face keeps its source's identity, so one whose source (provenance
``source_row``, matched against :attr:`FaceDataset.rows`) is in a fold's validation or test set
is dropped from that fold's training set (:func:`~feraug.evaluate.experiment.arms.leakage_guard`).

Statistics (equations in :mod:`feraug.evaluate.experiment.statistics`, applied to the runs in
:mod:`feraug.evaluate.experiment.summary`):

* the **decision** — one primary metric (``primary_metric``, macro-F1 by default: Disgust is 1.5 %
  of FER2013 and accuracy barely sees it) and one primary interval, across training seeds: the
  paired t-interval over the per-seed differences (S − 1 df) for the standard protocol, Nadeau &
  Bengio's corrected resampled t over the folds for repeated k-fold. It is conditional on the test
  set (the test faces are the same for every seed).
  :func:`~feraug.evaluate.experiment.statistics.decide` turns it into YES (excludes 0, in
  favour), NO (excludes a gain of ``min_gain``, 2 pt by default, or shows a loss) or NOT SHOWN
  (could not tell), and NOT SHOWN comes with the power the design had for a ``min_gain`` gain and
  the seeds that would reach 80 %. When every seed gave exactly the
  same difference (no training noise at all) the test-image bootstrap decides instead; with one
  seed nothing does.
* over test images — :func:`~feraug.evaluate.experiment.statistics.pooled_paired_bootstrap` on
  every evaluation set whose faces are the same for all runs (the standard test split; k-fold's
  fixed test set): images are resampled once per bootstrap draw and all runs of both arms are
  scored on that draw. It is reported as
  "test-set noise only" and never decides: it ignores training randomness, and in a simulation at
  FER2013 scale it excludes 0 in 10-30 % of experiments with no true difference
  (benchmarks/verdict_calibration.py, tests/test_verdict.py). The standard protocol also lists
  :func:`~feraug.evaluate.experiment.statistics.paired_bootstrap` per seed.
* secondary metrics (accuracy when macro-F1 is primary) get the same tests, labelled secondary;
  per-class changes get an across-seed interval each and are exploratory.

Where things are: :mod:`~feraug.evaluate.experiment.protocols` (folds), :mod:`~feraug.evaluate.experiment.arms`
(the arms and the leakage guard), :mod:`~feraug.evaluate.experiment.run` (training every arm, seed and
fold) with its prediction cache (:mod:`~feraug.evaluate.experiment.cache`),
:mod:`~feraug.evaluate.experiment.summary` and :mod:`~feraug.evaluate.experiment.statistics` (the
numbers). The verdict in words, ``results.json`` and the report are :mod:`feraug.report`'s;
:mod:`feraug.pipelines.experiment` runs it all and writes every file.
"""
