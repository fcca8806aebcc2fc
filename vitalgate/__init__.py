"""vitalgate: a home-monitoring gateway for people with chronic disease.

Data flows one way: device -> driver (bytes -> typed reading) -> signal (checks, flags)
-> outbox (durable) -> MQTT -> ingest -> store -> dashboard / reports / FHIR.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
