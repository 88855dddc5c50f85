"""bindkit models: Backbone adapters, CLIP, OC-CLIP (and DCSM), the factory and checkpoints.

Families live in their own packages (``occlip/``, ``dcsm/``, ``controlled/``) beside the
pieces they share (backbone, losses, scorer, checkpoint, registry). Import from the
submodules (``components.models.occlip.occlip`` ...); this package stays light so importing
one model does not pull in the others.
"""
