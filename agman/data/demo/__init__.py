"""The procedural stand-ins of the three datasets, each written in its real dataset's genuine layout:
``garment`` (the renderer they share), ``fashionai``, ``deepfashion`` and ``zappos`` (one writer each).

No real-data module imports this package; ``agman.data.registry`` ties each stand-in to its name.
"""
