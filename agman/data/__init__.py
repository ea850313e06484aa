"""Datasets: one module per real dataset (``fashionai``, ``deepfashion``, ``zappos``: parser,
release, ``read``), their stand-ins (``demo``), the ``registry`` of ``data.dataset`` names, the
acquisition machinery (``acquire``, ``download``), splits, triplets, the image cache and loading."""
