"""A daemonless client for OCI Distribution and Docker Registry v2 registries.

One room for every ``docker://`` source and sink: names (:mod:`.names`), per-host settings
(:mod:`.config`), credentials (:mod:`.credentials`), the auth challenge (:mod:`.auth`), HTTP
with TLS, proxies and retries (:mod:`.transport`), the protocol itself (:mod:`.client`) and
progress on a terminal (:mod:`.progress`). It knows blobs and manifests as bytes and digests,
not the image model, so the image room builds on it and not the other way round.
"""
