"""DCSM (arXiv 2503.08723): dense cosine similarity maps, their scorer heads and the model.

Import from the submodules (``components.models.dcsm.dcsm`` ...).
"""
