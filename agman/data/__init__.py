"""Datasets: attribute lists, the demo renderer, FashionAI parsing, splits, triplets, image loading."""
