"""The one trainer shared by every model: loop, devices, checkpoints, resume, logs, sample grids."""
