"""Whole-chain fault injection: devices, gateway, broker, ingest, store, each in a process."""
