"""Shared fixtures of the dataset reader tests (``raises_one_line`` is in
``tests/conftest.py``: the training tests use it too)."""
