"""Running buildpack commands in the stack's build image (the ``docker`` executor)."""
