"""`export_curated SAMPLE_ID (--threshold T | --target-precision P) [--include-unvalidated]
[--format csv|jsonl|imagefolder] [--out PATH] [--exclude-duplicates] [--exclude-suspects N]
[--json]`: write a run's curated selection, chosen from a balanced sample, with its manifest
(docs/architecture.md#curated-export)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.cli import CommandOutput
from annotate.errors import ServiceError
from annotate.validation.curated_export import (
    FORMATS,
    default_out,
    export_write,
    manifest_path,
)
from annotate.validation.curation import parse_rule, selection_compute
from annotate.validation.models import Sample


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


class Command(BaseCommand):
    help = (
        "Export a run's curated selection from a balanced sample: the items with p >= the "
        "threshold, or per-label thresholds that reach a target precision; verdicts confirm, "
        "correct or drop rows. CSV, JSON lines or a Hugging Face imagefolder directory, with a "
        "manifest (the rule, the estimated precision, the counts, the command to redo it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sample", type=int, help="the balanced sample (its id)")
        rule = parser.add_mutually_exclusive_group(required=True)
        rule.add_argument("--threshold", help="one threshold for every label (0 to 1)")
        rule.add_argument(
            "--target-precision", help="per-label thresholds reaching this precision (0 to 1)"
        )
        parser.add_argument(
            "--include-unvalidated",
            action="store_true",
            help="also export labels the sample does not measure",
        )
        parser.add_argument("--format", choices=FORMATS, default="csv", help="csv (default)")
        parser.add_argument(
            "--out",
            help="file (csv, jsonl) or new directory (imagefolder); default "
            "curated-sample<ID>.<format> or curated-sample<ID>/",
        )
        parser.add_argument(
            "--exclude-duplicates",
            action="store_true",
            help="keep one item per near-duplicate group (needs a finished duplicate scan)",
        )
        parser.add_argument(
            "--exclude-suspects", default=0, help="drop the run's N likeliest label errors"
        )
        parser.add_argument(
            "--json", action="store_true", help="print only the manifest as JSON on stdout"
        )

    def handle(self, *args, **opts) -> None:
        out = CommandOutput(self, as_json=opts["json"])
        sample = Sample.objects.select_related("run").filter(pk=opts["sample"]).first()
        if sample is None:
            raise CommandError(f"No sample {opts['sample']}.")
        fmt = opts["format"]
        target = Path(opts["out"]) if opts["out"] else default_out(sample.pk, fmt)
        try:
            rule = parse_rule(
                threshold=opts["threshold"],
                target_precision=opts["target_precision"],
                include_unvalidated=opts["include_unvalidated"],
            )
            selection = selection_compute(sample=sample, rule=rule)
            with out.progress(f"sample {sample.pk}", unit="rows") as bar:
                manifest = export_write(
                    selection=selection,
                    fmt=fmt,
                    out=target,
                    exclude_duplicates=opts["exclude_duplicates"],
                    exclude_suspects=opts["exclude_suspects"],
                    progress=bar,
                )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        counts = manifest["counts"]
        estimate = manifest["estimate"]
        out.say(
            f"Wrote {counts['rows']} rows to {target} ({fmt}); manifest "
            f"{manifest_path(fmt, target)}."
        )
        out.say(
            f"Verdicts: {counts['confirmed']} confirmed, {counts['corrected']} corrected, "
            f"{counts['rejected']} rejected; excluded {counts['excluded_duplicates']} "
            f"near-duplicates and {counts['excluded_suspects']} suspects"
            + (f"; {counts['missing_images']} images missing." if fmt == "imagefolder" else ".")
        )
        out.say(
            f"Estimated precision {_percent(estimate['precision'])} "
            f"[{_percent(estimate['precision_low'])}, {_percent(estimate['precision_high'])}] "
            f"over {estimate['validated']} validated items; "
            f"{estimate['unvalidated']} unvalidated "
            + ("included." if estimate["unvalidated_included"] else "left out.")
        )
        out.result(manifest)
