"""The device benchmark engine behind ``edge-rec benchmark``: latency through the public API with
the raw interpreter beside it, cold start and memory in fresh processes, quality on held-out
data, budgets from device profiles. numpy + a TFLite interpreter only, like the rest of
:mod:`device_runtime`; a device app that only serves never imports it."""
