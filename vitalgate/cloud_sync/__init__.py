"""Store-and-forward sync: SQLite outbox, MQTT publisher, payload schema, ingest, stores."""
