"""ChainGate: a self-hosted crypto payment gateway."""

__version__ = "0.1.0"
