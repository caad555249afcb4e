"""What a project keeps between builds: the layer cache, the app index and the build receipt."""
