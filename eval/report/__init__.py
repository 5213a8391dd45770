"""The run report: an accuracy heatmap, per-task lines, training curves and continual-learning metrics.

`eval` knows nothing of training: the caller gathers plain data from a run and hands it over.

    from eval.report import ReportData, StageCurves, write_report

    data = ReportData(
        title="quickstart",
        matrix=json.load(open("runs/quickstart/eval/matrix.json")),
        metrics=json.load(open("runs/quickstart/eval/metrics.json")),   # metrics_to_json(...) + "task_stage"
        general=["capitals"],
        stages=[StageCurves("sft_sorting", "sft", {"loss": [(25, 2.83), (50, 1.06)]})],
        notes=["base model: toy", "recipe: recipes/quickstart.yaml"],
    )
    index = write_report(Path("runs/quickstart/report"), data)   # index.html, report.md, *.png

index.html is self-contained apart from the PNGs beside it (inline CSS, no scripts, no network);
report.md says the same in Markdown.
"""

from eval.report.data import ReportData, StageCurves
from eval.report.writer import write_report

__all__ = ["ReportData", "StageCurves", "write_report"]
