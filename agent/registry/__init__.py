"""Registration: the inventory of servers, kept in step with the DBC node.

Import, register, drift and the outbox of node work.
"""
