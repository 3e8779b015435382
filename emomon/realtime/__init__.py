"""Online half: sources (LSL, BrainFlow, replay), ring buffer, pipeline, inference,
and the ZeroMQ wire format (:mod:`~emomon.realtime.messages`,
:mod:`~emomon.realtime.publish`, :mod:`~emomon.realtime.subscribe`).

Nothing under this package imports torch: streaming needs only onnxruntime, pyzmq
and pylsl.
"""
