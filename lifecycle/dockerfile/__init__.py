"""Custom Dockerfiles (docs/reference.md §7): read, build in the Docker engine, renormalise."""
