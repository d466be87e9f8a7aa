"""Pictures of faces and numbers: labelled image grids (PIL) and plots (matplotlib), no decisions."""
