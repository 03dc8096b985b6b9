"""IPMI: ``client`` (BmcClient) over ``session``, the only pyghmi importer.

``ipmitool`` builds the command line the DBC node runs (reference §6.2).
"""
