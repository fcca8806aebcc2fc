"""atheris harness: the ingest payload validator vitalgate.cloud_sync.schema.decode_batch."""

from tests.fuzz._atheris_main import fuzz

if __name__ == "__main__":
    fuzz("schema")
