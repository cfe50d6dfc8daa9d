"""Reference media: bounded fetching through the network guard, image and video rules, fingerprints."""
