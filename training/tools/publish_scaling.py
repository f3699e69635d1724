"""Which scaling runs scripts/publish-scaling-models.sh ships as the default bundles, or why none.

Prints `<images seen> <clmae run> <mae run>` for the largest budget (or the one asked for) whose two runs
are finished (checkpoint at the end of the last epoch, under --runs-dir) and evaluated (their fewshot.json
is committed under models/runs/), on the shipped bundles' architecture. Refuses (exit status 3, a message on
stderr) a budget smaller than the shipped bundles' images seen, read from their manifests (today 4,096
images x 6 epochs = 24,576): shipping it would replace the default model with a less trained one.
--min-images overrides that floor, for smoke tests on a copy of the repository only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_scaling_runs import ROOT, finished_epochs  # noqa: E402
import scaling_results as sr  # noqa: E402

BUNDLES = {"clmae": "clmae-vit-mini-p8-64", "mae": "mae-vit-mini-p8-64"}


def shipped_images_seen(models_dir: Path) -> tuple[int, str]:
    """(images seen, config) of the shipped default bundle: iterations per epoch (drop_last) x batch x epochs."""
    manifest = json.loads((models_dir / BUNDLES["clmae"] / "manifest.json").read_text())
    t = manifest["training"]
    return (t["num_images"] // t["batch_size"]) * t["batch_size"] * t["epochs"], manifest["config"]


def choose(runs_dir: Path, models_dir: Path, images: int | None, min_images: int | None) -> tuple[int, dict[str, str]]:
    shipped, config = shipped_images_seen(models_dir)
    floor = shipped if min_images is None else min_images
    runs = sr.read_runs(models_dir / "runs")
    pairs = sr.by_budget(runs)
    ready = [b for b in sr.evaluated_budgets(runs)
             if all(finished_epochs(runs_dir / pairs[b][m].name) for m in sr.METHODS)]
    if images is not None and images not in ready:
        raise SystemExit(f"budget {images:,} is not ready to publish: both runs must be finished under {runs_dir} "
                         f"and evaluated (scripts/evaluate-scaling-runs.sh); ready: {ready or 'none'}")
    if not ready:
        raise SystemExit(f"no budget is ready to publish: both runs finished under {runs_dir} and evaluated "
                         "(scripts/evaluate-scaling-runs.sh)")
    budget = images if images is not None else max(ready)
    if budget < floor:
        print(f"refused: {budget:,} images seen is fewer than the shipped bundles' {shipped:,}"
              + (f" (floor {floor:,} from --min-images)" if min_images is not None else ""), file=sys.stderr)
        raise SystemExit(3)
    chosen = {m: pairs[budget][m].name for m in sr.METHODS}
    for m, name in chosen.items():
        run_config = json.loads((runs_dir / name / "config.json").read_text())["config"]
        if run_config != config:
            raise SystemExit(f"{name} is a {run_config} run; the shipped bundles are {config}: publishing it needs "
                             "new bundle names, the default model and the tests changed with it (issue 16)")
    return budget, chosen


def check_export(bundle: Path, run: str, results_dir: Path, runs_dir: Path) -> str:
    """Refuse (exit status 3) to publish `bundle`, exported now from the run's checkpoint, unless the run's few-shot
    result measured the bundle that scripts/evaluate-scaling-runs.sh exported from that same checkpoint: the card
    states that result for the shipped weights. The checkpoint is recognised by its epochs and training wall time
    (as evaluate_scaling_runs.ensure_bundle does), not by the graph's bytes: those also hold the exporting code's
    file paths and line numbers (the ONNX exporter's stack-trace metadata). Returns a line saying what matched."""
    evaluated_bundle = runs_dir / run / "bundle" / run
    result = json.loads((results_dir / run / "fewshot.json").read_text())["models"][run]["encoder_sha256"]
    problem = None
    if not (evaluated_bundle / "manifest.json").is_file():
        problem = f"{evaluated_bundle} is gone"
    else:
        evaluated = json.loads((evaluated_bundle / "manifest.json").read_text())
        now = json.loads((bundle / "manifest.json").read_text())
        if evaluated["graphs"]["encoder"]["sha256"] != result:
            problem = f"its few-shot result measured encoder {result[:16]}, not {evaluated_bundle}"
        elif [evaluated["training"][k] for k in ("epochs", "wall_time_seconds")] != \
                [now["training"][k] for k in ("epochs", "wall_time_seconds")]:
            problem = "its checkpoint changed since it was evaluated"
    if problem:
        print(f"refused: {run}: {problem} (scripts/evaluate-scaling-runs.sh)", file=sys.stderr)
        raise SystemExit(3)
    same = now["graphs"]["encoder"]["sha256"] == result
    return (f"{bundle.name}: the checkpoint evaluated as {run}; encoder graph "
            + ("byte-identical to the evaluated one" if same else "re-exported (bytes differ from the evaluated one)"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="?", type=int, default=None, help="budget to publish (default: the largest ready)")
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "scaling")
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--min-images", type=int, default=None, help="override the floor (smoke tests on a copy only)")
    p.add_argument("--check-export", nargs=2, metavar=("BUNDLE", "RUN"), default=None,
                   help="only check that BUNDLE, exported from RUN's checkpoint, is what its few-shot result measured")
    args = p.parse_args(argv)
    if args.check_export:
        bundle, run = args.check_export
        print(check_export(Path(bundle), run, args.models_dir / "runs", args.runs_dir))
        return 0
    budget, chosen = choose(args.runs_dir, args.models_dir, args.images, args.min_images)
    print(f"{budget} {chosen['clmae']} {chosen['mae']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
