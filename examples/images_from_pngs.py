"""A class-conditional ConvNet on a folder of small grayscale PNGs, with classifier-free guidance.

    python examples/images_from_pngs.py pngs/ --steps 2000
    python examples/images_from_pngs.py pngs/ --make-demo     # writes the 8x8 digits as PNGs first

The folder holds one sub-folder per class (pngs/0/*.png, pngs/1/*.png, ...), images 8x8 pixels
(the ConvNet's size). PNGs are read with `pngio.py` beside this script (zlib only, no PIL).
Samples of every class are written to OUT/class-K.png.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

import straightline as sl
from pngio import read_png, write_png


def make_demo(folder: Path, per_class: int) -> None:
    images, labels = sl.data.digits()  # [N, 1, 8, 8] in [-1, 1], [N]
    for k in range(10):
        (folder / str(k)).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images[labels == k][:per_class]):
            write_png(folder / str(k) / f"{i}.png", ((image[0] + 1) * 127.5).round().byte().numpy())


def read_folder(folder: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    images, labels = [], []
    for k, name in enumerate(classes):
        for file in sorted((folder / name).glob("*.png")):
            images.append(read_png(file))
            labels.append(k)
    if not images:
        raise SystemExit(f"no PNGs under {folder}/<class>/")
    x = torch.from_numpy(np.stack(images)).float()[:, None] / 127.5 - 1  # [N, 1, H, W] in [-1, 1]
    return x, torch.tensor(labels), classes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--make-demo", action="store_true")
    parser.add_argument("--per-class", type=int, default=170)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=Path("png-samples"))
    args = parser.parse_args()
    if args.make_demo:
        make_demo(args.folder, args.per_class)
    x, y, classes = read_folder(args.folder)
    torch.manual_seed(0)
    model = sl.models.ConvNet(channels=args.channels, num_classes=len(classes))
    result = sl.train(model, x, labels=y, label_dropout=0.1, steps=args.steps, batch_size=64, lr=2e-3,
                      warmup_steps=min(100, args.steps // 10), progress=False)
    args.out.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(classes):
        labels = torch.full((8,), k)
        v = sl.guidance.guided_velocity(result.ema_model, labels, args.guidance)
        samples = sl.sample(v, torch.randn(8, 1, 8, 8), steps=20, method="midpoint")  # [8, 1, 8, 8]
        row = torch.cat(list(samples[:, 0].clamp(-1, 1)), dim=1)  # [8, 64] side by side
        write_png(args.out / f"class-{name}.png", ((row + 1) * 127.5).round().byte().numpy())
    print(f"{result}; {len(x)} images of {len(classes)} classes; samples in {args.out}/")


if __name__ == "__main__":
    main()
