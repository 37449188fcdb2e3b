"""pytest fixtures for the vendor fakes (the fakes themselves are in devkit.fakes)."""
