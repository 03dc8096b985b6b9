"""Monitoring: read each BMC and the node, judge, run passes.

``reader`` does the I/O, ``crosscheck`` is pure verdicts, ``loop`` runs the passes.
"""
