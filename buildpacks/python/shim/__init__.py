"""Home of the Lambda-simulating shim that the Python buildpack copies into every image."""
