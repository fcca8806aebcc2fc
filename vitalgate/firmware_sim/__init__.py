"""Simulated health devices as real BLE peripherals on bumble's virtual radio."""
