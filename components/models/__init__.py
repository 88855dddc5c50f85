"""bindkit models: Backbone adapters, CLIP, OC-CLIP (and DCSM), the factory and checkpoints.

Import from the submodules (``components.models.occlip`` ...); this package stays light so
importing one model does not pull in open_clip for the others.
"""
