"""The Node.js runtime buildpack (registration lands with its build code)."""
