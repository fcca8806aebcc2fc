"""The gateway daemon: device registry, pairing, sessions, pipeline, alerts, CLI wiring."""
