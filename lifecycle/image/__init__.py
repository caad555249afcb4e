"""The image model, its blobs, layer tar writer, tree scan, references and transports."""
