"""Pure numpy/scipy signal processing: the single definition of emomon's features."""
