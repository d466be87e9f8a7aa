"""The instrument: does a synthetic face show its target emotion, and is a real face's label credible?

Two cross-fitted judges (:mod:`~feraug.evaluate.instrument.crossfit`, :mod:`~feraug.evaluate.instrument.judges`)
score faces no model of theirs trained on; negative controls (:mod:`~feraug.evaluate.instrument.controls`)
say what an untouched or merely degraded face scores; :mod:`~feraug.evaluate.instrument.quality`
measures a synthetic set against them, :mod:`~feraug.evaluate.instrument.selection` keeps its best
faces and :mod:`~feraug.evaluate.instrument.filtering` drops real faces whose labels the judges doubt.
"""
