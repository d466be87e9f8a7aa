"""Figures and reports: image grids, plots, run summaries."""
