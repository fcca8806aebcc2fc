"""Clinical signal processing with NumPy and SciPy: validation, filtering, clinical metrics."""
