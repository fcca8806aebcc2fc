"""atheris harness: the GATT codecs of vitalgate.drivers.pulse_oximeter."""

from tests.fuzz._atheris_main import fuzz

if __name__ == "__main__":
    fuzz("pulse_oximeter")
