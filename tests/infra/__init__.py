"""Test infrastructure: real services and base images that the end-to-end tests share."""
