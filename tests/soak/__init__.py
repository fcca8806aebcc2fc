"""Soak: the gateway over simulated days with many devices; resources stay flat."""
