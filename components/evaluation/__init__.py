"""Benchmarks (public formats and our synthetic suites), metrics and reports.

benchmark = get_benchmark("aro/vg_relation", "/data/aro")
result = evaluate(scorer, benchmark, batch_size=32)
result.headline(), result.summary(), result.per_category()
write_report([result, ...], out_dir)
"""

from components.evaluation.benchmark import (
    Benchmark,
    BenchmarkError,
    BenchmarkFileMissing,
    BenchmarkItem,
    ImageRef,
    load_image,
)
from components.evaluation.loaders import benchmark_names, get_benchmark
from components.evaluation.metrics import (
    EvalResult,
    ItemResult,
    accuracy_by_category,
    evaluate,
    group_accuracy,
    macro_accuracy,
    winoground_scores,
)
from components.evaluation.report import (
    markdown_table,
    plot_failures,
    plot_suites,
    results_dict,
    write_report,
    write_tables,
)

__all__ = [
    "Benchmark",
    "BenchmarkError",
    "BenchmarkFileMissing",
    "BenchmarkItem",
    "EvalResult",
    "ImageRef",
    "ItemResult",
    "accuracy_by_category",
    "benchmark_names",
    "evaluate",
    "get_benchmark",
    "group_accuracy",
    "load_image",
    "macro_accuracy",
    "markdown_table",
    "plot_failures",
    "plot_suites",
    "results_dict",
    "winoground_scores",
    "write_report",
    "write_tables",
]
