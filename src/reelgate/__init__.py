"""Reelgate: a self-hosted gateway that speaks EvoLink's unified generation API."""

__version__ = "0.1.0"
