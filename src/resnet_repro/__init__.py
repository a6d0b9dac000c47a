"""resnet_repro: a reproduction of He et al., "Deep Residual Learning for Image Recognition" (2016)."""

__version__ = "0.1.0"
