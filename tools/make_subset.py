"""Make the embedded Fashion-MNIST subset (datasets/fashion-mnist-subset) from the real files.

    python tools/make_subset.py [--train 6000] [--test 1000] [--seed 0] [--data-dir DIR]

Stratified (every class keeps its share), deterministic (same seed, same files), written in the real
IDX .gz format so that the same reader loads both, with a SHA256SUMS of the decompressed bytes.
"""
import argparse
import gzip
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mlcourse import data  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=int, default=6000)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=str(data.EMBEDDED_DIR))
    args = p.parse_args(argv)

    full = data.load_fashion_mnist(source="full", data_dir=args.data_dir)
    xtr, ytr = data.stratified_subset(full.x_train, full.y_train, args.train, seed=args.seed)
    xte, yte = data.stratified_subset(full.x_test, full.y_test, args.test, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sums = []
    for key, arr in (("train_images", xtr), ("train_labels", ytr), ("test_images", xte), ("test_labels", yte)):
        name = data.FILES[key][0]
        data.write_idx(out / name, arr)
        with gzip.open(out / name, "rb") as f:
            sums.append(f"{hashlib.sha256(f.read()).hexdigest()}  {name}")
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    (out / "README.md").write_text(
        "# Embedded Fashion-MNIST subset\n\n"
        f"{args.train} training and {args.test} test images of the real Fashion-MNIST (Xiao, Rasul and "
        "Vollgraf 2017, MIT licence), stratified by class, made by `python tools/make_subset.py "
        f"--seed {args.seed}` from the full files. Same IDX format as the originals. SHA256SUMS holds the "
        "SHA-256 of each file's decompressed bytes.\n")
    print(f"wrote {out}: train {xtr.shape}, test {xte.shape}")


if __name__ == "__main__":
    main()
