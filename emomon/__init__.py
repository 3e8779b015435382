"""emomon: streaming real-time EEG emotion monitor with leak-free offline evaluation."""

__version__ = "0.1.0"
