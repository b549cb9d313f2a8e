"""One module per CLI sub-command; each exposes ``command`` (a click command)."""
