"""`thresholds SAMPLE_ID [--step 0.1] [--json]`: the sample's threshold table, as on the
dashboard and at GET /api/samples/{id}/thresholds/ (the same function computes all three)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.cli import CommandOutput
from annotate.validation import metrics
from annotate.validation.models import Sample


def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class Command(BaseCommand):
    help = "Print the threshold table (hits and errors per probability threshold) of a sample."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sample_id", type=int)
        parser.add_argument("--step", default=str(metrics.DEFAULT_STEP), help="threshold step")
        parser.add_argument(
            "--json", action="store_true", help="print only the table as JSON on stdout"
        )

    def handle(self, *args, **options) -> None:
        try:
            step = metrics.parse_step(options["step"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        sample = Sample.objects.select_related("run").filter(pk=options["sample_id"]).first()
        if sample is None:
            raise CommandError(f"no sample {options['sample_id']}")
        table = metrics.thresholds_table(sample=sample, step=step)
        out = CommandOutput(self, as_json=options["json"])
        if out.as_json:
            out.result({"sample": sample.pk, **table})
            return
        header = ["θ", "classified", "hits", "errors", "hit rate", "error rate", "ratio",
                  "95% interval", "precision"]  # fmt: skip
        lines = [header]
        for r in table["rows"]:
            interval = f"{_fmt(r['ratio_low'], 2)}-{_fmt(r['ratio_high'], 2)}"
            lines.append([
                f"{r['threshold']:.2f}", str(r["classified"]), str(r["hits"]), str(r["errors"]),
                _fmt(r["hit_rate"]), _fmt(r["error_rate"]), _fmt(r["ratio"]), interval,
                _fmt(r["precision"]),
            ])  # fmt: skip
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        for line in lines:
            cells = zip(line, widths, strict=True)
            self.stdout.write("  ".join(cell.rjust(w) for cell, w in cells))
        self.stdout.write(
            f"sample {sample.pk}: {table['decided']} decided of {table['items']} items, "
            f"{table['ties']} ties excluded, {table['pending']} pending; "
            f"best threshold {table['best_threshold']} (ratio {_fmt(table['best_ratio'])}); "
            f"mean probability of hits {_fmt(table['mean_probability_hits'])}, "
            f"of misses {_fmt(table['mean_probability_misses'])}"
        )
