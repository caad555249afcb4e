"""Running built images in the local Docker engine: ``run``, ``invoke`` and what they share.

``runner`` starts a container and follows it (``run``), ``invoke`` performs one invocation,
``runtime_api`` is the host-side Lambda Runtime API server ``invoke`` answers through,
``interrupts`` turns Ctrl-C into a flag the followers poll, and ``load`` puts an image from
any reference into the engine first. Nothing here imports the build side.
"""
