"""MDNET: definition compatible with the authors' checkpoints, and checkpoint loading."""
