"""IPMI: ``client`` (BmcClient) over ``session``, the only pyghmi importer.

``ipmitool`` builds the command line the DBC node runs (docs/protocol.md §6.2).
"""
