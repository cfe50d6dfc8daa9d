"""Tests of reelgate_client against a real server (and the helpers the CLI tests share)."""
