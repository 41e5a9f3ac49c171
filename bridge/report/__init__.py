"""Statistical reports: self-contained HTML (figures embedded as base64 PNG) and a Markdown twin, rebuilt from
a store's saved verdicts and fitted predictions without recomputation."""

from bridge.report._build import Report, build_report, verdict_tables
from bridge.report._document import fmt
from bridge.report.predictions import prediction_band, save_predictions
from bridge.report.results import describe_hypothesis, save_verdicts, verdict_key

__all__ = [
    "Report",
    "build_report",
    "describe_hypothesis",
    "fmt",
    "prediction_band",
    "save_predictions",
    "save_verdicts",
    "verdict_key",
    "verdict_tables",
]
