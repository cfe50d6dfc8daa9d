"""The client's own version: it is released apart from the server, so it does not read ``reelgate.__version__``."""

__version__ = "0.1.0"
