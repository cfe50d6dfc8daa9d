"""Tests of the user CLI and ``reelgate demo`` through the real entry point."""
