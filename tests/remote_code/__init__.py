"""Modelling code that tests copy into tiny checkpoints, mirroring real reward-model repos."""
