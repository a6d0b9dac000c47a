"""resnet_repro: a reproduction of He et al., "Deep Residual Learning for Image Recognition" (2016)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so that importing the package (the campaign's controls do) does not import torch.
    if name == "load_trained":
        from .weights import load_trained

        return load_trained
    raise AttributeError(name)
