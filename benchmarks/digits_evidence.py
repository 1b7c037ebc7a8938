"""Does the sweep pay off? A search's best configurations against the hand-set spec, on test data.

Each side is trained again with the same fresh seeds and scored once on the same 360 test images
of scikit-learn's digits, so the numbers are test accuracies with a 95% CI over seeds (Student's
t), not the search's optimistic best-of-N validation score:

1. ``sweeps run studies/digits_search.yaml``: the pruned TPE search around ``specs/digits.yaml``;
2. ``sweeps retrain studies/digits_search.yaml --top K --seeds S``: its K best configurations;
3. ``sweeps retrain specs/digits.yaml --seeds S``: the hand-set spec, the same way;
4. scikit-learn's RBF SVM (``C=10, gamma=0.02`` on pixels scaled to [0, 1]) fitted on the very
   images the Mixers train on (the spec's train split, without its validation images) and, as a
   second row, on train and validation images together; scored on the same test images.

Then one Markdown table with the hardware and the commands: test accuracy as mean ± 95% CI, n,
the difference to the hand-set spec with Welch's t-test, the search's value, and the seconds of
training (summed over the runs, so a resumed run counts its whole training).

    python benchmarks/digits_evidence.py                     # K=3, S=5: tens of minutes on 2 cores
    python benchmarks/digits_evidence.py --results results/evidence   # keep (and resume) the runs

Every step resumes: run it again with the same ``--results`` and finished work is not redone.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _hardware import hardware  # benchmarks/, on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "digits_search.yaml"
SPEC = REPO / "specs" / "digits.yaml"
SVM = {"C": 10.0, "gamma": 0.02}


def sweeps(args: list[str], log: Path) -> float:
    """Run ``sweeps ARGS`` (output to ``log``); its wall time in seconds. Exits on failure."""
    command = [sys.executable, "-m", "mixer_sweeps", *args]
    print(f"$ sweeps {shlex.join(args)}", flush=True)
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as out:
        code = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        sys.exit(f"sweeps {shlex.join(args)} exited {code}; see {log}")
    print(f"  {seconds:.0f} s", flush=True)
    return seconds


def svm_rows() -> list[dict[str, object]]:
    """The RBF SVM fitted on the Mixers' training images, then on train + val; test accuracy."""
    import torch
    from sklearn.svm import SVC

    from mixer_sweeps.data import load_data
    from mixer_sweeps.spec import load_run_spec

    data = load_data(load_run_spec(SPEC).data)

    def pixels(*splits):
        images = torch.cat([s.images for s in splits]).flatten(1).double() / 255.0
        return images.numpy(), torch.cat([s.labels for s in splits]).numpy()

    test_x, test_y = pixels(data.test)
    rows = []
    for what, splits in (
        ("train", (data.train,)),
        ("train + val", (data.train, data.val)),
    ):
        x, y = pixels(*splits)
        started = time.perf_counter()
        accuracy = SVC(kernel="rbf", **SVM).fit(x, y).score(test_x, test_y)
        rows.append(
            {
                "model": f"RBF SVM (C=10, gamma=0.02) on the {len(x):,} {what} images",
                "test acc, mean ± 95% CI": f"{100 * accuracy:.2f}%",
                "n": "1 (deterministic)",
                "vs hand-set (Welch p)": "–",
                "search val acc": "–",
                "training time": f"{time.perf_counter() - started:.2f} s",
            }
        )
    return rows


def retrain_rows(
    root: Path, label: str, reference: pd.Series | None = None
) -> tuple[list[dict[str, object]], list[str]]:
    """One row per retrained configuration (from ``sweeps retrain``'s files in ``root``), and
    a line per configuration giving its params.

    ``reference``: the hand-set spec's test accuracies, for the difference and Welch's t-test.
    """
    from scipy import stats

    from mixer_sweeps.results import ci95

    summary = pd.read_csv(root / "summary.csv", index_col="config")
    runs = pd.read_csv(root / "runs.csv")
    search = [c for c in summary.columns if c.startswith("search ")]
    params = list(summary.columns[: summary.columns.get_loc("seeds")])
    rows, configurations = [], []
    for config, row in summary.iterrows():
        mine = runs[(runs["config"] == config) & (runs["state"] == "completed")]
        acc = mine["test_acc"]
        versus = "–"
        if reference is not None:
            p = stats.ttest_ind(acc, reference, equal_var=False).pvalue
            versus = f"{100 * (acc.mean() - reference.mean()):+.2f} (p = {p:.2f})"
        rows.append(
            {
                "model": f"{label} {config}".strip(),
                "test acc, mean ± 95% CI": f"{100 * acc.mean():.2f}% ± {100 * ci95(acc):.2f}",
                "n": f"{len(acc)} seeds",
                "vs hand-set (Welch p)": versus,
                "search val acc": f"{100 * row[search[0]]:.2f}%" if search else "–",
                "training time": f"{mine['seconds'].sum():.0f} s",
            }
        )
        if params:
            shown = ", ".join(f"{p}={row[p]:.3g}" for p in params)
            configurations.append(f"- {label} {config}: {shown}")
    return rows, configurations


def main() -> None:
    os.environ["WANDB_MODE"] = "disabled"  # the digits spec tracks offline; not what is measured
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=None, help="default: a new temp folder")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    results = (args.results or Path(tempfile.mkdtemp(prefix="digits-evidence-"))).resolve()
    results.mkdir(parents=True, exist_ok=True)
    log = results / "evidence.log"
    print(f"hardware: {hardware()}")
    print(f"results and log: {results}/")

    study = STUDY.relative_to(REPO)
    spec = SPEC.relative_to(REPO)
    common = ["--results", str(results)]
    search = sweeps(["run", str(study), *common], log)
    top = sweeps(
        ["retrain", str(study), "--top", str(args.top), "--seeds", str(args.seeds), *common], log
    )
    hand = sweeps(["retrain", str(spec), "--seeds", str(args.seeds), *common], log)

    from mixer_sweeps.spec import load_run_spec

    hand_root = results / load_run_spec(SPEC).name / "retrain"
    hand_rows, _ = retrain_rows(hand_root, f"hand-set {spec}")
    hand_runs = pd.read_csv(hand_root / "runs.csv")
    reference = hand_runs.loc[hand_runs["state"] == "completed", "test_acc"]
    rows, configurations = retrain_rows(
        results / "digits_search" / "retrain", "searched", reference
    )
    rows += [{**r, "model": f"hand-set {spec}"} for r in hand_rows]
    rows += svm_rows()
    print()
    print(f"hardware: {hardware()}")
    print(
        f"commands (this invocation, resumed work excluded): sweeps run {search:.0f} s,"
        f" retrain of the search's best {top:.0f} s, retrain of the hand-set spec {hand:.0f} s"
    )
    trials = pd.read_csv(results / "digits_search" / "report" / "trials.csv")
    print(
        f"search: {len(trials)} trials ({(trials['state'] == 'PRUNED').sum()} pruned),"
        f" {trials['seconds'].sum():.0f} s of training"
    )
    print(pd.DataFrame(rows).to_markdown(index=False))
    print()
    print("\n".join(configurations))


if __name__ == "__main__":
    main()
