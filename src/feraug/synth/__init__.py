"""Synthesis: translate or sample faces, write synthetic sets with provenance."""
