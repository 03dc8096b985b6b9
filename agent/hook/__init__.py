"""Hook relay: answers the GPU PCs' boot hooks.

It checks their seat keys and relays fresh DeepLink codes to the node.
"""
