"""One module per Bluetooth SIG profile: pure GATT codecs (bytes <-> frozen dataclasses).

Codecs are pure: no bleak, no logging, no clock. Spec scaling (SFLOAT, 1/1024 s RR intervals,
kg/L) is applied inside the codec and nowhere else. Malformed input raises
:class:`vitalgate.errors.ParseError`.
"""
