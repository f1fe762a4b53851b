"""Process entry points (thin: wiring only)."""
