"""adabench: benchmark deep metric learning losses for image anomaly detection."""

from adabench.runtime import configure_process

configure_process()  # before anything imports torch: see adabench/runtime.py

__version__ = "0.1.0"
