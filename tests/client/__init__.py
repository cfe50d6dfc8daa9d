"""Tests of reelgate.client against a real server (and the helpers the CLI tests share)."""
