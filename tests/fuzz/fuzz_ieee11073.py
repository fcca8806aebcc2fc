"""atheris harness: the GATT codecs of vitalgate.drivers.ieee11073."""

from tests.fuzz._atheris_main import fuzz

if __name__ == "__main__":
    fuzz("ieee11073")
