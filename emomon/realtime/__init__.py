"""Online half: sources, pipeline, inference, outputs and the wire format.

Sources (LSL, BrainFlow, replay), ring buffer, pipeline, inference, sinks, and
the ZeroMQ wire format (:mod:`~emomon.realtime.messages`,
:mod:`~emomon.realtime.publish`, :mod:`~emomon.realtime.subscribe`).

Nothing under this package imports torch: streaming needs only onnxruntime, pyzmq
and pylsl.
"""
