"""Builds the model card's figures and numbers from the committed run logs, bundles and few-shot results.

Every number and picture in models/README.md comes from here, so the card can be refreshed whenever a
run or the default model changes:

    .venv/bin/python training/tools/model_card.py   # writes models/card/*.png, models/README.md, README's few-shot table

Inputs (all committed, none needs ../shared):
  models/runs/<run>/log.jsonl, config.json, keep_scores/epoch_XXX.json   (training/clmae/run_log.py, monitor.py)
  models/<bundle>/manifest.json                                          (training/clmae/export.py)
  models/fewshot/fewshot.json                                            (src/cli/fewshot-benchmark.ts)
  models/runs/scaling-*/fewshot.json, models/card/train-throughput.json  (issue 16: tools/scaling_card.py)
The card describes the runs that produced the shipped bundles: each manifest names its run's --output-dir,
whose logs are models/runs/<that folder's name>/ (the 6-epoch runs of scripts/train-default-models.sh, or the
scaling runs once scripts/publish-scaling-models.sh has shipped them).
The pictures draw the masks only, never the images: the monitoring images are research-only Imagenette
validation photos, which must not be copied into the repository (../shared/data/README.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scaling_card import scaling_values  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
BUNDLES = {"clmae": "clmae-vit-mini-p8-64", "mae": "mae-vit-mini-p8-64"}
ABLATIONS = {"control": "ablation-control", "no_kl": "ablation-no-kl", "no_div": "ablation-no-div"}


# ---------------------------------------------------------------------------------------------------------------
# reading the logs


def shipped_runs() -> dict[str, str]:
    """method -> the models/runs/ folder of the run each shipped bundle was exported from (its manifest's
    --output-dir); the bundle's own name when the manifest does not say."""
    runs = {}
    for method, bundle in BUNDLES.items():
        args = json.loads((MODELS / bundle / "manifest.json").read_text())["training"].get("args", {})
        run = Path(str(args.get("output_dir", bundle))).name
        runs[method] = run if (MODELS / "runs" / run / "log.jsonl").is_file() else bundle
    return runs


def read_log(run: str) -> dict[str, list[dict]]:
    """log.jsonl -> records grouped by type (run, iter, epoch, monitor, ...)."""
    records: dict[str, list[dict]] = {}
    with open(MODELS / "runs" / run / "log.jsonl") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                records.setdefault(rec["type"], []).append(rec)
    return records


def read_config(run: str) -> dict:
    return json.loads((MODELS / "runs" / run / "config.json").read_text())


def read_keep_scores(run: str, epoch: int) -> np.ndarray:
    """-> keep scores (n_images, rows, cols) of the monitoring images after `epoch` epochs (0 = at init)."""
    data = json.loads((MODELS / "runs" / run / "keep_scores" / f"epoch_{epoch:03d}.json").read_text())
    rows, cols = data["grid"]
    return np.asarray(data["keep_scores"], dtype=np.float64).reshape(-1, rows, cols)


def epoch_x(rec: dict, iters_per_epoch: int) -> float:
    """Fractional epoch of an iteration record (iter counts from 1 within its epoch)."""
    return rec["epoch"] + rec["iter"] / iters_per_epoch


def iters_per_epoch(log: dict) -> int:
    return max(r["iters"] for r in log["epoch"])


def wall_time(log: dict) -> float:
    return sum(r["wall_seconds"] for r in log["epoch"])


def topk_mask(keep_scores: np.ndarray, mask_ratio: float) -> np.ndarray:
    """keep scores (n, rows, cols) -> mask (n, rows, cols), 1 = removed; keeps the K highest (ties: lower index)."""
    n, rows, cols = keep_scores.shape
    flat = keep_scores.reshape(n, -1)
    k = int(flat.shape[1] * (1 - mask_ratio))
    order = np.argsort(-flat, axis=1, kind="stable")
    mask = np.ones_like(flat)
    np.put_along_axis(mask, order[:, :k], 0.0, axis=1)
    return mask.reshape(n, rows, cols)


# ---------------------------------------------------------------------------------------------------------------
# figures


def plot_losses(out: Path, logs: dict[str, dict]) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for method, log in logs.items():
        ipe = iters_per_epoch(log)
        xs = [epoch_x(r, ipe) for r in log["iter"]]
        axes[0].plot(xs, [r["loss_mae"] for r in log["iter"]], label=f"{method}: MAE step loss")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("masked MSE (norm-pix target)")
    axes[0].set_title("MAE reconstruction loss (training batches)")
    axes[0].legend()
    clmae = logs["clmae"]
    ipe = iters_per_epoch(clmae)
    xs = [epoch_x(r, ipe) for r in clmae["iter"]]
    for key, label in [("loss_rec_weighted", "weighted reconstruction"), ("loss_kl", "KL ratio (x ref. batch)"),
                       ("loss_div", "diversity"), ("loss_gauss", "Gaussian binarisation")]:
        if key in clmae["iter"][0]:
            axes[1].plot(xs, [r[key] for r in clmae["iter"]], label=label)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("epoch")
    axes[1].set_title("CL-MAE masking-step terms (unweighted)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=110)
    plt.close(fig)


def plot_curriculum(out: Path, clmae: dict, mask_ratio: float) -> None:
    ipe = iters_per_epoch(clmae)
    xs = [epoch_x(r, ipe) for r in clmae["iter"]]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(xs, [r["curriculum_factor"] for r in clmae["iter"]], label="curriculum factor λ", color="tab:purple")
    ax.plot(xs, [r["keep_score_mean"] for r in clmae["iter"]], label="mean keep score (kept ratio)", color="tab:green")
    ax.axhline(1 - mask_ratio, ls="--", color="tab:green", lw=0.8, label=f"KL target {1 - mask_ratio:.2f}")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("epoch")
    ax.set_ylim(-1.1, 1.1)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Curriculum factor and kept ratio over training")
    fig.tight_layout()
    fig.savefig(out / "curriculum.png", dpi=110)
    plt.close(fig)


def plot_recon_vs_random(out: Path, monitor: list[dict], lambdas: dict[int, float]) -> None:
    """Left: both errors per epoch. Right: their ratio, which is what the curriculum claim is about."""
    epochs = [m["epoch"] for m in monitor]
    fig, (ax, ax_r) = plt.subplots(1, 2, figsize=(11, 3.4))
    ax.plot(epochs, [m["recon_learned"] for m in monitor], "o-", label="learned mask")
    ax.plot(epochs, [m["recon_random"] for m in monitor], "s--", label="random mask, same ratio")
    ax.set_xlabel("epochs trained (0 = at init)")
    ax.set_ylabel("masked MSE on 16 held-out images")
    ax.set_title("Reconstruction error: learned vs random mask")
    ax.legend()
    ratio = [m["recon_learned"] / m["recon_random"] for m in monitor]
    ax_r.plot(epochs, ratio, "o-", color="tab:red")
    ax_r.axhline(1, color="black", lw=0.6)
    for e in epochs[1:]:
        lam = lambdas.get(e - 1)
        if lam is not None:
            ax_r.axvspan(e - 1, e, color="tab:green" if lam > 0 else "tab:purple", alpha=0.08)
            ax_r.annotate(f"λ={lam:+.2f}", (e - 0.5, max(ratio)), fontsize=7, ha="center", va="bottom")
    ax_r.set_xlabel("epochs trained (green: partner epoch, purple: adversary epoch)")
    ax_r.set_ylabel("learned / random")
    ax_r.set_title("Ratio (< 1: learned mask easier than random)")
    fig.tight_layout()
    fig.savefig(out / "recon-learned-vs-random.png", dpi=110)
    plt.close(fig)


def plot_mask_grid(path: Path, rows: list[tuple[str, np.ndarray]], mask_ratio: float, n_images: int = 8,
                   title: str = "") -> None:
    """One row of keep-score heatmaps and one row of top-K masks per (label, keep scores (n, r, c))."""
    fig, axes = plt.subplots(2 * len(rows), n_images, figsize=(1.35 * n_images, 1.45 * 2 * len(rows)))
    for r, (label, scores) in enumerate(rows):
        mask = topk_mask(scores, mask_ratio)
        for i in range(n_images):
            ax_s, ax_m = axes[2 * r, i], axes[2 * r + 1, i]
            ax_s.imshow(scores[i], cmap="viridis", vmin=0, vmax=1)
            ax_m.imshow(1 - mask[i], cmap="gray", vmin=0, vmax=1)
            for ax in (ax_s, ax_m):
                ax.set_xticks([])
                ax.set_yticks([])
        axes[2 * r, 0].set_ylabel(f"{label}\nkeep score", fontsize=7)
        axes[2 * r + 1, 0].set_ylabel(f"{label}\nkept (white)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ablation_kept(out: Path, control: dict, no_kl: dict, mask_ratio: float) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for label, log in [("all losses", control), ("without KL", no_kl)]:
        ipe = iters_per_epoch(log)
        ax.plot([epoch_x(r, ipe) for r in log["iter"]], [r["keep_score_mean"] for r in log["iter"]], label=label)
    ax.axhline(1 - mask_ratio, ls="--", color="gray", lw=0.8, label=f"target {1 - mask_ratio:.2f}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean keep score")
    ax.set_title("Ablation: kept ratio without the KL loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ablation-no-kl.png", dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------
# numbers


def curriculum_table(monitor: list[dict], lambdas: dict[int, float]) -> str:
    lines = ["| epochs trained | λ of last epoch | error, learned mask | error, random mask | learned / random | "
             "mean keep score | mask IoU across images |", "|---|---|---|---|---|---|---|"]
    for m in monitor:
        lam = lambdas.get(m["epoch"] - 1)
        lam_s = "(init)" if lam is None else f"{lam:+.2f}"
        lines.append(f"| {m['epoch']} | {lam_s} | {m['recon_learned']:.4f} | {m['recon_random']:.4f} | "
                     f"{m['recon_learned'] / m['recon_random']:.3f} | {m['keep_score_mean']:.3f} | "
                     f"{m['mask_iou_mean']:.3f} |")
    return "\n".join(lines)


def fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def fewshot_tables(report: dict, models: dict[str, str]) -> tuple[str, str, dict]:
    """-> (markdown table like the paper's Table 1, win-count sentence, counts)."""
    shots = report["shots"]
    lines = []
    header = "| data set | features | " + " | ".join(f"{s}-shot Acc@1 / Acc@5" for s in shots) + " |"
    lines += [header, "|---|---|" + "---|" * len(shots)]
    wins = ties = total = clear = 0
    losses_list: list[str] = []
    over_pixels = {"clmae": 0, "mae": 0}
    for ds in report["datasets"]:
        res = ds["results"]
        feature_names = [models["clmae"], models["mae"]] + [k for k in res if k not in models.values()]
        for name in feature_names:
            if name not in res:
                continue
            cells = [f"{r['acc1']['mean'] * 100:.1f}±{r['acc1']['std'] * 100:.1f} / "
                     f"{r['acc5']['mean'] * 100:.1f}±{r['acc5']['std'] * 100:.1f}" for r in res[name]]
            lines.append(f"| {ds['name']} | {name} | " + " | ".join(cells) + " |")
        pixels = next((k for k in res if k not in models.values()), None)
        if models["clmae"] in res and models["mae"] in res:
            for a, b in zip(res[models["clmae"]], res[models["mae"]]):
                for metric in ("acc1", "acc5"):
                    total += 1
                    diff = a[metric]["mean"] - b[metric]["mean"]
                    if abs(diff) > max(a[metric]["std"], b[metric]["std"]):
                        clear += 1
                    if diff > 1e-9:
                        wins += 1
                    elif abs(diff) <= 1e-9:
                        ties += 1
                    else:
                        losses_list.append(f"{ds['name']} {a['shots']}-shot {metric}")
        if pixels:
            for method in ("clmae", "mae"):
                for a, p in zip(res.get(models[method], []), res[pixels]):
                    over_pixels[method] += sum(a[m]["mean"] > p[m]["mean"] for m in ("acc1", "acc5"))
    counts = {"wins": wins, "ties": ties, "total": total, "losses": losses_list, "clear": clear,
              "over_pixels": over_pixels}
    sentence = (f"CL-MAE beats MAE in **{wins} of {total}** cases (data sets x shot counts x Acc@1/Acc@5)"
                f"{f', ties in {ties}' if ties else ''}; it loses in {total - wins - ties}. "
                f"Only {clear} of the {total} differences exceed the larger of the two standard deviations "
                f"over seeds. Against raw pixels, CL-MAE is ahead in {over_pixels['clmae']} of {total} cases "
                f"and MAE in {over_pixels['mae']}.")
    return "\n".join(lines), sentence, counts


def probe_section(probe: dict, shipped_run: str) -> str:
    """The curriculum probe (training/tools/curriculum_probe.py) as a table and a sentence worded from its numbers;
    says so when it probed another run than the shipped CL-MAE bundle's (checkpoints are not committed, so it can
    only be re-run where that run's checkpoint still is)."""
    rows = [("trained module (start)", probe["start"]), ("after partner steps (λ = +1)", probe["partner"]),
            ("after adversary steps (λ = -1)", probe["adversary"])]
    lines = ["| masking module | error, learned mask | error, random masks | learned / random | mean keep score |",
             "|---|---|---|---|---|"]
    for label, r in rows:
        lines.append(f"| {label} | {r['recon_learned']:.4f} | {r['recon_random']:.4f} | {r['ratio']:.3f} | "
                     f"{r['keep_score_mean']:.3f} |")
    start, partner, adversary = probe["start"]["ratio"], probe["partner"]["ratio"], probe["adversary"]["ratio"]
    if partner < start < adversary:
        verdict = ("the sign does what the curriculum needs in both directions: the partner made the learned mask "
                   "easier and the adversary made it harder, so the main run's flat ratio comes from its short "
                   "co-training, not from the masking step.")
    elif partner < adversary:
        verdict = ("the adversary's masks end harder than the partner's, so the sign acts in the right direction "
                   f"relative to each other, but {'the partner did not lower the ratio below the trained module' if partner >= start else 'the adversary did not raise it above the trained module'}"
                   f"'s: at this scale one phase of the soft-path objective does not carry over to the hard top-K "
                   f"masks that the MAE trains on. The changes are small ({abs(partner - start) * 100:.1f}% and "
                   f"{abs(adversary - start) * 100:.1f}%).")
    else:
        verdict = "the sign does **not** separate the two phases here: a partner should end below an adversary."
    text = (f"With the trained MAE of `{probe['checkpoint']}` frozen, {probe['steps']} masking steps (batch {probe['batch_size']}, lr "
            f"{probe['lr']:g}) from the trained module moved the learned/random error ratio on {probe['eval_images']} "
            f"held-out images from {start:.3f} to {partner:.3f} as a partner and to {adversary:.3f} as an adversary: "
            + verdict)
    probed = Path(probe["checkpoint"]).parent.name
    if probed != shipped_run:
        text += (f" **This probe ran on `{probed}`, not on the shipped run `{shipped_run}`**, whose checkpoint was not "
                 "kept where the probe could be run again (`curriculum_probe.py --checkpoint`).")
    return "\n".join(lines) + "\n\n" + text


def findings(monitor: list[dict], lambdas: dict[int, float], mask_ratio: float, values: dict) -> str:
    """Plain statements of what the logs show, worded from the numbers (never fixed in advance)."""
    out = []
    ratio = {m["epoch"]: m["recon_learned"] / m["recon_random"] for m in monitor}
    partner = [ratio[e + 1] for e, lam in lambdas.items() if lam > 0 and e + 1 in ratio]
    adversary = [ratio[e + 1] for e, lam in lambdas.items() if lam < 0 and e + 1 in ratio]
    if partner and adversary:
        p, a = float(np.mean(partner)), float(np.mean(adversary))
        agrees = p < 1 < a
        out.append(
            f"- Curriculum: after partner epochs (λ > 0) the learned mask's error was {p:.3f}x the random mask's "
            f"(mean over {len(partner)} epochs); after adversary epochs (λ < 0) it was {a:.3f}x "
            f"(mean over {len(adversary)}). "
            + ("This is the paper's pattern: easier than random while a partner, harder while an adversary."
               if agrees else
               "This is **not** the clean pattern the paper describes (below 1 as partner, above 1 as adversary)"
               + (f"; the direction of the change is right (adversary masks are relatively harder than partner masks)."
                  if a > p else "; even the direction of the change is not there at this scale."))
        )
    last = monitor[-1]
    out.append(f"- Kept ratio: the mean keep score ended at {last['keep_score_mean']:.3f} "
               f"(KL target {1 - mask_ratio:.2f}); masks across images ended at a mean pairwise IoU of "
               f"{last['mask_iou_mean']:.3f}.")
    if values.get("fewshot_sentence"):
        out.append(f"- Few-shot: {values['fewshot_sentence']}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------


class _NotRun(dict):
    """Template values; a value whose run is not committed (e.g. the ablations) reads "(not run)"."""

    def __missing__(self, key: str) -> str:
        return "(not run)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", type=Path, default=Path(__file__).with_name("model_card_template.md"))
    parser.add_argument("--output", type=Path, default=MODELS / "README.md")
    parser.add_argument("--card-dir", type=Path, default=MODELS / "card",
                        help="where the figures and numbers.json go (the template links card/*.png)")
    parser.add_argument("--skip-readme", action="store_true",
                        help="do not refresh the few-shot table in the project's README.md")
    args = parser.parse_args(argv)
    out = args.card_dir
    out.mkdir(exist_ok=True)

    main_runs = shipped_runs()
    logs = {m: read_log(run) for m, run in main_runs.items()}
    configs = {m: read_config(run) for m, run in main_runs.items()}
    manifests = {m: json.loads((MODELS / bundle / "manifest.json").read_text()) for m, bundle in BUNDLES.items()}
    mask_ratio = configs["clmae"]["mask_ratio"]
    epochs = configs["clmae"]["epochs"]
    clmae = logs["clmae"]
    lambdas = {r["epoch"]: r["mean_curriculum_factor"] for r in clmae["epoch"]}
    monitor = sorted(clmae["monitor"], key=lambda m: m["epoch"])

    plot_losses(out, logs)
    plot_curriculum(out, clmae, mask_ratio)
    plot_recon_vs_random(out, monitor, lambdas)
    mid = epochs // 2
    plot_mask_grid(out / "masks-over-training.png",
                   [("init", read_keep_scores(main_runs["clmae"], 0)),
                    (f"epoch {mid}", read_keep_scores(main_runs["clmae"], mid)),
                    (f"epoch {epochs}", read_keep_scores(main_runs["clmae"], epochs))],
                   mask_ratio, title="Learned masks of the same 8 held-out images at init, halfway and at the end")

    values: dict[str, object] = {}
    for m in ("clmae", "mae"):
        c, log = configs[m], logs[m]
        values[f"{m}_wall"] = fmt_minutes(wall_time(log))
        epoch_walls = [r["wall_seconds"] for r in log["epoch"]]
        values[f"{m}_epoch_wall_range"] = f"{min(epoch_walls):.0f}-{max(epoch_walls):.0f} s"
        values[f"{m}_images_per_s"] = f"{np.mean([r['images_per_second'] for r in log['iter']]):.1f}"
        last = log["epoch"][-1]
        values[f"{m}_final_loss_mae"] = f"{last['mean_loss_mae']:.4f}"
        values[f"{m}_bundle_mib"] = f"{sum(g['bytes'] for g in manifests[m]['graphs'].values()) / 2**20:.1f}"
        values[f"{m}_sha"] = manifests[m]["graphs"]["encoder"]["sha256"][:16]
    c = configs["clmae"]
    scaling = main_runs["clmae"].startswith("scaling-")
    values.update(
        data_description=(f"all {logs['clmae']['run'][0]['num_images']} images of `imagenette/train`" if not c.get("limit_images")
                          else f"a seeded subset of {c['limit_images']} images of `imagenette/train`"),
        training_command=("`scripts/train-scaling-curve.sh` (the largest budget, published by "
                          "`scripts/publish-scaling-models.sh`)" if scaling else
                          "`scripts/train-default-models.sh main` and `scripts/train-default-models.sh ablations`"),
        runs_note=("The two runs are the largest budget of the scaling curve below, trained one after the other "
                   f"(`scripts/train-scaling-curve.sh`, {c.get('threads')} threads) on a machine also shared with other work"
                   if scaling else
                   "The two runs ran side by side (`scripts/train-default-models.sh main`: CL-MAE on 2 threads, MAE "
                   "on 1) on a machine also shared with other work (the service's development and tests)"),
        images_seen=f"{sum(r['images'] for r in clmae['epoch']):,}",
    )
    values.update(
        epochs=epochs, batch=c["effective_batch_size"], lr=f"{c['lr']:.2e}", blr=c["blr"],
        limit_images=c.get("limit_images"), warmup=c["warmup_epochs"], mask_ratio=mask_ratio,
        lambda_kl=c["lambda_kl"], lambda_div=c["lambda_div"], lambda_gauss=c["lambda_gauss"],
        torch_version=c["torch_version"], curriculum_table=curriculum_table(monitor, lambdas),
        final_keep=f"{monitor[-1]['keep_score_mean']:.3f}", final_iou=f"{monitor[-1]['mask_iou_mean']:.3f}",
        iters_per_epoch=iters_per_epoch(clmae), clmae_final_loss_masking=f"{clmae['epoch'][-1]['mean_loss_masking']:.4f}",
    )

    # Ablations (skipped, and said so, when their runs are not committed).
    if all((MODELS / "runs" / run / "log.jsonl").exists() for run in ABLATIONS.values()):
        abl = {k: read_log(run) for k, run in ABLATIONS.items()}
        abl_cfg = read_config(ABLATIONS["control"])
        abl_epochs = abl_cfg["epochs"]
        plot_ablation_kept(out, abl["control"], abl["no_kl"], mask_ratio)
        plot_mask_grid(out / "ablation-no-div.png",
                       [("all losses", read_keep_scores(ABLATIONS["control"], abl_epochs)),
                        ("without diversity", read_keep_scores(ABLATIONS["no_div"], abl_epochs))],
                       mask_ratio, title="Masks of the same 8 held-out images after the ablation runs")
        def last_monitor(k: str) -> dict:
            return sorted(abl[k]["monitor"], key=lambda m: m["epoch"])[-1]
        keep = {k: [r["keep_score_mean"] for r in abl[k]["iter"]] for k in ("control", "no_kl")}
        values.update(
            abl_epochs=abl_epochs, abl_images=abl_cfg.get("limit_images"),
            abl_control_keep=f"{last_monitor('control')['keep_score_mean']:.3f}",
            abl_no_kl_keep=f"{last_monitor('no_kl')['keep_score_mean']:.3f}",
            abl_no_kl_keep_min=f"{min(keep['no_kl']):.3f}", abl_no_kl_keep_max=f"{max(keep['no_kl']):.3f}",
            abl_control_keep_min=f"{min(keep['control']):.3f}", abl_control_keep_max=f"{max(keep['control']):.3f}",
            abl_control_iou=f"{last_monitor('control')['mask_iou_mean']:.3f}",
            abl_no_div_iou=f"{last_monitor('no_div')['mask_iou_mean']:.3f}",
            abl_wall=fmt_minutes(sum(wall_time(a) for a in abl.values())),
        )
    else:
        print("ablation runs not found under models/runs/: their section says so")

    fewshot_path = MODELS / "fewshot" / "fewshot.json"
    if fewshot_path.exists():
        report = json.loads(fewshot_path.read_text())
        table, sentence, counts = fewshot_tables(report, BUNDLES)
        values.update(fewshot_table=table, fewshot_sentence=sentence, fewshot_losses=", ".join(counts["losses"]) or "none",
                      fewshot_command=report.get("command", ""), fewshot_protocol=report.get("protocol", ""))
    else:
        values.update(fewshot_table="(not run yet)", fewshot_sentence="", fewshot_losses="", fewshot_command="",
                      fewshot_protocol="")

    probe_path = MODELS / "runs" / "curriculum-probe.json"
    if probe_path.exists():
        values["probe"] = probe_section(json.loads(probe_path.read_text()), main_runs["clmae"])

    issue16 = scaling_values(MODELS / "runs", out, report if fewshot_path.exists() else None, BUNDLES,
                             curriculum_table, {m: manifests[m]["graphs"]["encoder"]["sha256"] for m in BUNDLES})
    values.update(issue16)
    values["mask_ratio_keep"] = f"{1 - mask_ratio:.2f}"
    values["findings"] = findings(monitor, lambdas, mask_ratio, values)
    template = args.template.read_text()
    args.output.write_text(template.format_map(_NotRun(values)))
    (out / "numbers.json").write_text(json.dumps({k: v for k, v in values.items()
                                                  if not str(v).startswith("|") and k not in issue16},
                                                 indent=2, default=str) + "\n")
    print(f"wrote {args.output} and {out}/")
    if fewshot_path.exists() and not args.skip_readme:
        # The README's table is rendered by the same TypeScript that the benchmark uses for its own table.
        subprocess.run(["node", "--import", "tsx", "scripts/fewshot-table.ts", str(fewshot_path), "README.md"],
                       cwd=ROOT, check=True)
        print("refreshed the few-shot table in README.md")


if __name__ == "__main__":
    main()
