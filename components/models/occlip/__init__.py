"""OC-CLIP (arXiv 2502.14113): the model, its binding module and structured score, its options.

Import from the submodules (``components.models.occlip.occlip`` ...).
"""
