"""What every layer needs and that needs no other layer: stateless seeds and safe checkpoint files."""
