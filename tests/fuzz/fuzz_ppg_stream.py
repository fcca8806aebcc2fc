"""atheris harness: the GATT codecs of vitalgate.drivers.ppg_stream."""

from tests.fuzz._atheris_main import fuzz

if __name__ == "__main__":
    fuzz("ppg_stream")
