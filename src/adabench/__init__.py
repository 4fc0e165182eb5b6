"""adabench: benchmark deep metric learning losses for image anomaly detection."""

__version__ = "0.1.0"
