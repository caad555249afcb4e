"""The shared, language-neutral shim conformance corpus and its runner."""
