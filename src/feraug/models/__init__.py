"""What one training step computes, per model family (no loops, no file I/O)."""
