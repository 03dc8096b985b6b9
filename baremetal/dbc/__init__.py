"""The DBC node's HTTP protocol: typed client, authentication, request and response types."""
