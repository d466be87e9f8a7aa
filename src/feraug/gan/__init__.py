"""Adversarial losses, gradient penalty, image pool: the GAN-specific building blocks."""
