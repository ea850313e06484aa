"""Figure 7: AG-MAN's ASA map (``ModelOutput.attention``, (B, 1, h, w)) upsampled onto the image,
for several test images under every attribute type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from agman.data.prepared import PreparedData
from agman.inference import TrainedModel
from agman.reports.figures.layout import (
    CAPTION_SIZE,
    add_column_header,
    add_title,
    attention_grid,
    draw_tile,
    pretty,
    save_png,
    wrap,
)
from agman.reports.figures.prepared import cached_image, retrieval_test_rows, value_name, value_names


def _pick_images(data: PreparedData, rng: np.random.Generator, n_images: int) -> pd.DataFrame:
    """Seeded test images, spread over the attribute types they are annotated with."""
    rows = retrieval_test_rows(data)
    first = rows.drop_duplicates("entry")
    by_attribute = [first[first["attribute_index"] == a] for a in range(len(data.attributes))]
    picked = []
    for k in range(n_images):  # round-robin over the annotated attribute so FashionAI shows each type
        pool = [g for g in by_attribute if not g.empty]
        if not pool:
            break
        group = pool[k % len(pool)]
        i = rng.integers(len(group))
        picked.append(group.iloc[i])
        by_attribute = [g[g["entry"] != group.iloc[i]["entry"]] for g in by_attribute]
    return pd.DataFrame(picked)


def attention_maps(trained: TrainedModel, data: PreparedData, subtitle: str, out: str | Path, seed: int = 0,
                   n_images: int = 4) -> Path:
    """Figure 7: the ASA attention map of each test image under every attribute type, on the image.

    The map is shown as weight x h*w, so 1 is the uniform map's weight and the colour scale is
    shared by the whole figure (comparable between images and attributes).
    """
    names = value_names(data)
    images = _pick_images(data, np.random.default_rng(seed), n_images)
    rows = retrieval_test_rows(data)
    pixels = [cached_image(data, e) for e in images["entry"]]
    batch = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)  # (B, 3, S, S) uint8
    size = batch.shape[-1]
    maps = []
    for a in range(len(data.attributes)):
        attention = trained.run(batch, a).attention.cpu()  # (B, 1, h, w), sums to 1 over h*w
        h, w = attention.shape[-2:]
        up = F.interpolate(attention * (h * w), size=(size, size), mode="bilinear", align_corners=False)
        maps.append(up[:, 0].numpy())  # (B, S, S)
    vmax = max(1.5, max(float(m.max()) for m in maps))
    grid = attention_grid(len(images), len(data.attributes))
    fig = grid.figure()
    aga = trained.config["model"].get("aga", {})
    note = "" if aga.get("asa", True) else " (ASA is off in this run: the map is uniform)"
    add_title(fig, grid.size, "ASA attention under each query attribute (cf. the paper's Figure 7)",
              f"{subtitle}. The {h}x{w} map is upsampled bilinearly onto the image.{note}")
    add_column_header(fig, grid, 0, "image")
    for a, attribute in enumerate(data.attributes):
        add_column_header(fig, grid, 1 + a, pretty(attribute))
    image_rows = rows.set_index(["entry", "attribute"])["value"]
    mappable = None
    for r, (pix, entry) in enumerate(zip(pixels, images["entry"], strict=True)):
        draw_tile(grid.axes(fig, r, 0), pix, caption=f"test image {r + 1}")
        for a, attribute in enumerate(data.attributes):
            key = (entry, attribute)
            caption = wrap(value_name(names, attribute, int(image_rows[key]))) if key in image_rows.index \
                else "(not annotated)"
            ax = grid.axes(fig, r, 1 + a)
            draw_tile(ax, pix, caption=caption)
            mappable = ax.imshow(maps[a][r], cmap="jet", alpha=0.5, vmin=0.0, vmax=vmax, interpolation="bilinear")
    x, y, _, _ = grid.rect(len(images) - 1, len(data.attributes))
    w, h_in = grid.size
    _, top_y, _, tile_h = grid.rect(0, 0)
    cax = fig.add_axes([x + (grid.tile + 0.25) / w, y, 0.15 / w, top_y + tile_h - y])
    bar = fig.colorbar(mappable, cax=cax)
    bar.set_label("attention weight x h·w (1 = uniform)", fontsize=CAPTION_SIZE)
    bar.ax.tick_params(labelsize=CAPTION_SIZE)
    return save_png(fig, out)
