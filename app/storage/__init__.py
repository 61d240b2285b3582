"""Object storage through fsspec: backends, the opsml-root path mapping, streaming I/O."""
