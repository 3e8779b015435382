"""Offline half: training and evaluation of models on recorded datasets.

Feature caching, labels, splits/protocols, training, metrics, reports and ONNX
export.
"""
