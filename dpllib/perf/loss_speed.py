"""Speed of dpllib's perceptual loss vs the lpips package, and of early vs late points.

    dpl bench loss_speed [--device cuda] [--repeats 5]

Prints images/s (median of repeats) for forward and forward+backward passes.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

warnings.filterwarnings("ignore")


def images_per_second(fn, batch: int, repeats: int, device: str) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    print(f"{'case':44s} {'px':>4s} {'batch':>5s} {'pass':>9s} {'dpllib':>9s} {'lpips':>9s} {'ratio':>6s}")
    against_lpips(args.device, args.repeats)
    early_against_late(args.device, args.repeats)


def against_lpips(dev: str, repeats: int) -> None:
    """dpllib's LPIPS against the lpips package's (same random backbone, lin), images/s."""
    import lpips

    from dpllib import PerceptualLoss

    for net in ("alex", "vgg"):
        ref = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).to(dev).eval()
        state = {"features." + k.split(".", 1)[1]: v for k, v in ref.net.state_dict().items()}
        ours = PerceptualLoss.lpips(net, weights=state).to(dev)
        for px, batch in ((64, 32), (256, 4)):
            x = torch.rand(batch, 3, px, px, device=dev) * 2 - 1
            y = torch.rand(batch, 3, px, px, device=dev) * 2 - 1
            for mode in ("forward", "fwd+bwd"):
                if mode == "forward":
                    def a():
                        with torch.no_grad():
                            ours(x, y)
                    def b():
                        with torch.no_grad():
                            ref(x, y)
                else:
                    xg = x.clone().requires_grad_(True)
                    a = lambda: ours(xg, y).mean().backward()
                    b = lambda: ref(xg, y).mean().backward()
                ra = images_per_second(a, batch, repeats, dev)
                rb = images_per_second(b, batch, repeats, dev)
                print(f"{'LPIPS ' + net + '-lin (equal config)':44s} {px:4d} {batch:5d} {mode:>9s} "
                      f"{ra:9.1f} {rb:9.1f} {ra / rb:6.2f}")


def early_against_late(dev: str, repeats: int) -> None:
    """VGG-16's relu2_2 against relu5_3 through dpllib, and the same slices of plain torchvision."""
    import torchvision

    from dpllib import PerceptualLoss

    px, batch = 224, 8
    x = torch.rand(batch, 3, px, px, device=dev)
    y = torch.rand(batch, 3, px, px, device=dev)
    rates = {}
    for point in ("relu2_2", "relu5_3"):
        loss = PerceptualLoss("vgg16", point, weights="random").to(dev)
        for mode in ("forward", "fwd+bwd"):
            if mode == "forward":
                def a():
                    with torch.no_grad():
                        loss(x, y)
            else:
                xg = x.clone().requires_grad_(True)
                a = lambda: loss(xg, y).backward()
            rates[point, mode] = images_per_second(a, batch, repeats, dev)
            print(f"{'vgg16 ' + point + ' (mse)':44s} {px:4d} {batch:5d} {mode:>9s} {rates[point, mode]:9.1f}")
    for mode in ("forward", "fwd+bwd"):
        print(f"vgg16 relu2_2 / relu5_3 speed-up, {mode}: {rates['relu2_2', mode] / rates['relu5_3', mode]:.2f}x")
    # the ceiling: plain torchvision slices, no loss around them (FLOP ratio is 3.3x)
    features = torchvision.models.vgg16().features.eval().to(dev, memory_format=torch.channels_last)
    xx = torch.cat([x, y]).contiguous(memory_format=torch.channels_last)
    plain = {}
    for end in (9, 30):
        def a():
            with torch.no_grad():
                features[:end](xx)
        plain[end] = images_per_second(a, batch, repeats, dev)
    print(f"plain torchvision vgg16.features[:9] / [:30] speed-up, forward: {plain[9] / plain[30]:.2f}x")


if __name__ == "__main__":
    main()
