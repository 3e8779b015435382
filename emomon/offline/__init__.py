"""Offline half: feature caching, labels, splits/protocols, training, metrics, reports
and ONNX export."""
