"""Stage ``tables``: Tables 2-10 from every cell's report (``reports/tables/``, agman.reports.tables)
and every cell's headline number (``reports/metrics/summary.json``, agman.reports.summary)."""

from __future__ import annotations

import logging

from agman.config import Config
from agman.pipeline.entry import write_json
from agman.pipeline.layout import CELLS_DIR, SUMMARY_PATH, TABLES_DIR
from agman.reports.summary import headline_metrics
from agman.reports.tables import write_tables

log = logging.getLogger(__name__)


def run(cfg: Config) -> None:
    written = write_tables(CELLS_DIR, TABLES_DIR, seeds=tuple(cfg.train.seeds))
    log.info("wrote %d table files to %s", len(written), TABLES_DIR)
    write_json(SUMMARY_PATH, headline_metrics(CELLS_DIR, cfg.train.seeds))
