"""The one engine for everything trained: GAN runs of every family (families, launch, the shared trainer) and
expression classifiers, with their devices, schedules, time budgets, processes, run folders and checkpoints."""
