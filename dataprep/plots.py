"""The charts of report.html: the drawing lives in `common.plots`, which the run report
(`train report`) shares; `dataprep.report` keeps calling them as `plots.bars` and
`plots.histogram`."""

from common.plots import CYCLE, PALETTE, bars, histogram

__all__ = ["CYCLE", "PALETTE", "bars", "histogram"]
