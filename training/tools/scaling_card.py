"""The model card's issue-16 sections: the scaling curve, CL-MAE vs MAE per budget, the goal check, the
curriculum at the largest budget and the training step's throughput before/after its optimisation.

training/tools/model_card.py calls `scaling_values` and puts the returned markdown into the template. Every
number comes from committed files (scaling_results.py reads them); a budget without results is shown as
"not yet trained" (or how far it got), never filled in.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import scaling_results as sr  # noqa: E402

DATASET_ORDER = ("imagewoof", "sport_balls", "cifar10")
THROUGHPUT_COMMAND = (
    "cd training && ../.venv/bin/python benchmarks/train_throughput.py --config vit_mini_p8_64 --batch-size 64 "
    "--data ../../shared/data/imagenette/train --data-cache ../data/cache --threads 2 --compile --iters 20 "
    "--warmup-iters 3 --json-out ../models/card/train-throughput.json")
VARIANT_NOTES = {
    "before": "JPEG files in DataLoader workers, for-loop AdamW (the step before issue 16)",
    "files": "JPEG files, fused AdamW",
    "memory": "in-memory pipeline, fused AdamW (what the scaling runs use)",
    "compiled": "memory + torch.compile'd blocks (`--compile`)",
    "synthetic": "one fixed batch: the model step alone",
}


def fmt_images(n: int) -> str:
    return f"{n:,}"


def _cell(run: sr.ScalingRun | None, dataset: str) -> str:
    if run is None:
        return "not yet trained"
    if run.fewshot is None or not run.finished:
        return run.state().split(" (")[0]
    acc = sr.accuracy(sr.feature_rows(run.fewshot), dataset)
    return "not measured" if acc is None else f"{acc[0]:.1f}±{acc[1]:.1f}"


def plot_curve(path: Path, runs: list[sr.ScalingRun], pixels: dict | None) -> bool:
    """16-shot Acc@1 vs images seen, both methods, one panel per data set; False when nothing to draw."""
    evaluated = [r for r in runs if r.finished and r.fewshot is not None]
    if not evaluated:
        return False
    pixel_rows = sr.feature_rows(pixels, sr.PIXELS_FEATURE) if pixels else {}
    fig, axes = plt.subplots(1, len(DATASET_ORDER), figsize=(12, 3.6))
    for ax, dataset in zip(axes, DATASET_ORDER):
        for method, style in (("clmae", "o-"), ("mae", "s--")):
            points = [(r.images_seen, sr.accuracy(sr.feature_rows(r.fewshot), dataset)) for r in evaluated
                      if r.method == method]
            points = [(x, a) for x, a in points if a is not None]
            if points:
                ax.errorbar([x for x, _ in points], [a[0] for _, a in points], yerr=[a[1] for _, a in points],
                            fmt=style, capsize=3, label="CL-MAE" if method == "clmae" else "MAE")
        pix = sr.accuracy(pixel_rows, dataset)
        if pix is not None:
            ax.axhline(pix[0], color="gray", lw=0.9, ls=":", label="pixels 16x16x3")
            ax.axhline(pix[0] + sr.GOAL_MARGINS[dataset], color="tab:red", lw=0.8, ls="-.",
                       label="goal: pixels + the data set's margin")
        ax.set_xscale("log")
        ticks = sr.budgets(runs)  # planned budgets too: the axis shows what is still to come
        ax.set_xlim(ticks[0] / 1.5, ticks[-1] * 1.5)
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{b / 1000:.0f}k" if b >= 1000 else str(b) for b in ticks], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("images seen in training")
        ax.set_title(f"{dataset} (goal: pixels + {sr.GOAL_MARGINS[dataset]:g})")
    axes[0].set_ylabel(f"{sr.GOAL_SHOTS}-shot Acc@1 (%)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Few-shot accuracy vs training budget (mean ± std over 3 seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def status_table(runs: list[sr.ScalingRun]) -> str:
    pairs = sr.by_budget(runs)
    lines = ["| images seen | epochs | CL-MAE run | MAE run |", "|---|---|---|---|"]
    for b in sr.budgets(runs):
        pair = pairs.get(b, {})
        epochs = next((r.epochs_planned for r in pair.values() if r.epochs_planned), None)
        lines.append(f"| {fmt_images(b)} | {epochs or '–'} | "
                     + " | ".join(pair[m].state() if m in pair else "not yet trained" for m in sr.METHODS) + " |")
    return "\n".join(lines)


def accuracy_table(runs: list[sr.ScalingRun], pixels: dict | None) -> str:
    pairs = sr.by_budget(runs)
    lines = ["| images seen | method | " + " | ".join(DATASET_ORDER) + " |", "|---|---|" + "---|" * len(DATASET_ORDER)]
    for b in sr.budgets(runs):
        for m in sr.METHODS:
            run = pairs.get(b, {}).get(m)
            lines.append(f"| {fmt_images(b)} | {'CL-MAE' if m == 'clmae' else 'MAE'} | "
                         + " | ".join(_cell(run, d) for d in DATASET_ORDER) + " |")
    if pixels:
        rows = sr.feature_rows(pixels, sr.PIXELS_FEATURE)
        cells = [sr.accuracy(rows, d) for d in DATASET_ORDER]
        lines.append("| – | pixels 16x16x3 | " + " | ".join("–" if c is None else f"{c[0]:.1f}±{c[1]:.1f}"
                                                         for c in cells) + " |")
    return "\n".join(lines)


def comparison_section(runs: list[sr.ScalingRun]) -> str:
    pairs = sr.by_budget(runs)
    evaluated = sr.evaluated_budgets(runs)
    lines = ["| images seen | cells compared | CL-MAE wins | MAE wins | ties | beyond the seeds' std: CL-MAE / MAE | "
             f"{sr.GOAL_SHOTS}-shot Acc@1, CL-MAE − MAE (points) |", "|---|---|---|---|---|---|---|"]
    for b in sr.budgets(runs):
        if b not in evaluated:
            lines.append(f"| {fmt_images(b)} | – | – | – | – | – | not both trained and evaluated yet |")
            continue
        c = sr.compare_methods(sr.feature_rows(pairs[b]["clmae"].fewshot), sr.feature_rows(pairs[b]["mae"].fewshot))
        diffs = {(x.dataset, x.shots): x for x in c.cells if x.metric == "acc1"}
        diff_text = ", ".join(f"{d} {diffs[(d, sr.GOAL_SHOTS)].diff:+.1f}{'*' if diffs[(d, sr.GOAL_SHOTS)].beyond_std else ''}"
                              for d in DATASET_ORDER if (d, sr.GOAL_SHOTS) in diffs)
        lines.append(f"| {fmt_images(b)} | {c.total} | {len(c.wins)} | {len(c.losses)} | {len(c.ties)} | "
                     f"{len(c.clear_wins)} / {len(c.clear_losses)} | {diff_text} |")
    return ("\n".join(lines) + "\n\nCells: every data set x shot count (1-16) x Acc@1/Acc@5. A difference is beyond "
            "the seeds' std when it exceeds the larger of the two methods' sample std over the 3 seeds (* in the "
            "last column).")


def goal_rows_text(label: str, rows: list[sr.GoalRow]) -> list[str]:
    out = []
    for r in rows:
        if r.met is None:
            out.append(f"| {label} | {r.dataset} | not measured | | | ≥ {r.required:g} | |")
            continue
        verdict = f"met, {r.gap:.1f} above" if r.met else f"**missed by {-r.gap:.1f}**"
        out.append(f"| {label} | {r.dataset} | {r.model_acc:.1f} | {r.pixel_acc:.1f} | {r.margin:+.1f} | "
                   f"≥ {r.required:g} | {verdict} |")
    return out


def not_comparable_text(label: str, problems: list[str]) -> str:
    return f"| {label} | all | no verdict: {'; '.join(problems)} | | | | |"


def goal_section(runs: list[sr.ScalingRun], pixels: dict | None, shipped: dict | None,
                 shipped_names: dict[str, str], shipped_shas: dict[str, str] | None = None) -> str:
    """The goal per evaluated budget (against the curve's pixel baseline) and for the shipped bundles (README
    table: against the pixel rows of the same benchmark run). A report off issue 16's protocol, or a README
    table measured on other weights than the shipped bundles' encoder (shipped_shas), gets no verdict."""
    header = ["| models | data set | 16-shot Acc@1 | pixels | margin | required | verdict |", "|---|---|---|---|---|---|---|"]
    lines, verdicts = list(header), []
    if shipped:
        shipped_pixels = sr.feature_rows(shipped, sr.PIXELS_FEATURE)
        for m in sr.METHODS:
            name = shipped_names[m]
            if name in shipped["models"]:
                problems = sr.comparison_problems(shipped, shipped)
                measured = shipped["models"][name].get("encoder_sha256")
                if shipped_shas and measured != shipped_shas[m]:
                    problems.append(f"the README table measured encoder {str(measured)[:16]}, the shipped bundle is "
                                    f"{shipped_shas[m][:16]} (scripts/fewshot-table.sh)")
                if problems:
                    lines.append(not_comparable_text(f"shipped `{name}`", problems))
                    continue
                rows = sr.goal_check(sr.feature_rows(shipped, name), shipped_pixels)
                lines += goal_rows_text(f"shipped `{name}`", rows)
                verdicts.append((f"the shipped `{name}`", rows))
    pairs = sr.by_budget(runs)
    if pixels:
        pixel_rows = sr.feature_rows(pixels, sr.PIXELS_FEATURE)
        for b in sr.budgets(runs):
            for m in sr.METHODS:
                run = pairs.get(b, {}).get(m)
                if run is None or not run.finished or run.fewshot is None:
                    continue
                label = f"{'CL-MAE' if m == 'clmae' else 'MAE'}, {fmt_images(b)} images"
                problems = sr.comparison_problems(run.fewshot, pixels)
                if problems:
                    lines.append(not_comparable_text(label, problems))
                    continue
                rows = sr.goal_check(sr.feature_rows(run.fewshot), pixel_rows)
                lines += goal_rows_text(label, rows)
    if len(lines) == len(header):
        return "No model has been evaluated against the pixel baseline yet."
    text = ["The goal of issue 16: the retrained default and baseline each beat raw pixels (16x16x3, same probe) "
            "at 16-shot Acc@1 by at least " + ", ".join(f"{v:g} points on {k}" for k, v in sr.GOAL_MARGINS.items())
            + " (every test image, 3 seeds).", "", *lines, ""]
    for label, rows in verdicts:
        met = sr.goal_met(rows)
        missed = [f"{r.dataset} by {-r.gap:.1f} points" for r in rows if r.met is False]
        text.append(f"- {label}: " + ("meets the goal on every data set." if met else
                                       "goal not decidable: a data set is not measured." if met is None else
                                       "misses the goal on " + ", ".join(missed) + "."))
    return "\n".join(text)


def throughput_section(path: Path) -> str:
    if not path.is_file():
        return ("Not measured yet: the figures must come from a quiet machine (no training run beside it). "
                f"The command, which writes the file this section reads:\n\n```bash\n{THROUGHPUT_COMMAND}\n```")
    report = json.loads(path.read_text())
    by = {(r["method"], r["variant"]): r for r in report["results"]}
    variants = [v for v in VARIANT_NOTES if any((m, v) in by for m in sr.METHODS)]
    lines = [f"{report['cpu']}, {report['threads']} threads, torch {report['torch']}, batch {report['batch_size']}, "
             f"`{report['config']}`; {report['iters']} timed iterations after {report['warmup_iters']} warm-up ones "
             "per method and variant (median iteration time), from `models/card/train-throughput.json`:", "",
             "| variant | MAE img/s | CL-MAE img/s | MAE CPU ms/img | CL-MAE CPU ms/img | vs before (MAE / CL-MAE) | load |",
             "|---|---|---|---|---|---|---|"]
    for v in variants:
        mae, cl = by.get(("mae", v)), by.get(("clmae", v))
        ratio = "/".join(f"{by[(m, v)]['images_per_second'] / by[(m, 'before')]['images_per_second']:.2f}x"
                         if (m, v) in by and (m, "before") in by else "–" for m in ("mae", "clmae"))
        load = "-".join(f"{x['load_average']:.1f}" for x in (mae, cl) if x)
        # inductor keeps compiled kernels on disk: a run after another compiles in seconds (cold figures in training/README.md)
        extra = f" (compile {', '.join(str(x['compile_seconds']) + ' s' for x in (mae, cl) if x and 'compile_seconds' in x)}" \
            "; shorter when inductor's on-disk cache is warm)" if v == "compiled" else ""
        lines.append(f"| {v}: {VARIANT_NOTES[v]}{extra} | {mae['images_per_second'] if mae else '–'} | "
                     f"{cl['images_per_second'] if cl else '–'} | {mae['cpu_ms_per_image'] if mae else '–'} | "
                     f"{cl['cpu_ms_per_image'] if cl else '–'} | {ratio} | {load} |")
    busiest = max(r["load_average"] for r in report["results"])
    if busiest > 1.5 * report["threads"]:
        lines += ["", f"**Taken on a busy machine** (load average up to {busiest:.1f} for {report['threads']} threads): "
                  "wall-clock figures follow the other jobs; compare the ratios within this run only."]
    lines += ["", f"Measure again (quiet machine, no training beside it): `{THROUGHPUT_COMMAND}`"]
    return "\n".join(lines)


def largest_curriculum_run(runs: list[sr.ScalingRun]) -> sr.ScalingRun | None:
    """The CL-MAE run of the largest budget that has logged a monitor record after training started."""
    with_monitor = [r for r in runs if r.method == "clmae" and any(m["epoch"] > 0 for m in r.log.get("monitor", []))]
    return max(with_monitor, key=lambda r: r.images_seen, default=None)


def scaling_values(runs_dir: Path, card_dir: Path, shipped: dict | None, shipped_names: dict[str, str],
                   curriculum_table, shipped_shas: dict[str, str] | None = None) -> dict[str, str]:
    """Template values of the issue-16 sections. curriculum_table(monitor, lambdas) renders the table (model_card);
    shipped_shas: method -> the shipped bundle's encoder sha256 (the README table must have measured it)."""
    runs = sr.read_runs(runs_dir)
    pixels = sr.read_pixels(runs_dir)
    drawn = plot_curve(card_dir / "scaling-curve.png", runs, pixels)
    values = {
        "scaling_status": status_table(runs),
        "scaling_accuracy": accuracy_table(runs, pixels),
        "scaling_figure": "![scaling curve](card/scaling-curve.png)" if drawn
        else "(no scaling run has been evaluated yet: no figure)",
        "scaling_comparison": comparison_section(runs),
        "scaling_goal": goal_section(runs, pixels, shipped, shipped_names, shipped_shas),
        "throughput_section": throughput_section(runs_dir.parent / "card" / "train-throughput.json"),  # an input: models/card, whatever card_dir the output goes to
    }
    run = largest_curriculum_run(runs)
    if run is None:
        values["scaling_curriculum"] = "No CL-MAE scaling run has finished an epoch yet."
    else:
        largest = max(sr.budgets(runs))
        lambdas = {r["epoch"]: r["mean_curriculum_factor"] for r in run.log["epoch"]}
        monitor = sorted(run.log["monitor"], key=lambda m: m["epoch"])
        note = f"`{run.name}`, {fmt_images(run.images_seen)} images seen"
        if not run.finished:
            note += f", still training ({run.epochs_done} of {run.epochs_planned} epochs logged)"
        if run.images_seen < largest:
            note += (f". It is the largest budget with a CL-MAE epoch logged so far; the largest planned budget, "
                     f"{fmt_images(largest)} images, has none yet")
        values["scaling_curriculum"] = f"From {note}:\n\n{curriculum_table(monitor, lambdas)}"
    return values
