"""Controlled dual encoders of "How can embedding models bind concepts?" (arXiv 2605.31503):
token and pixel scene encoders over the token world (components/data/controlled_world.py).

Import from the submodules (``components.models.controlled.controlled`` ...).
"""
