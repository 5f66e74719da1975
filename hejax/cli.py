"""The ``hejax`` command: denoise a CT slice on ciphertexts, compare, inspect.

``hejax denoise INPUT`` encrypts a slice, runs a shipped RED-CNN on the
ciphertexts through the client/server protocol, decrypts, prints a table and
writes a figure. ``hejax compare INPUT`` runs every backend × transform.
``hejax info`` lists backends, presets, transforms and shipped models. Every
user error ends in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

EXAMPLE = "example"


@dataclasses.dataclass
class Result:
    """What one encrypted run produced and cost."""

    low: np.ndarray
    normal: np.ndarray | None
    plain: np.ndarray
    encrypted: np.ndarray | None
    transcript: Any
    program: Any
    exact: float | None = None  # max |encrypted - fixed-point reference| (coef)


# -- inputs and outputs -------------------------------------------------------


def _input(path: str, dose: float | None, seed: int, crop: int | None = None):
    """Low-dose image and (when known) normal-dose reference, both in HU.

    The dose is simulated on the whole slice; `crop` then keeps its centre.
    """
    from hejax.ldct import data

    source = data.example_slice_path() if path == EXAMPLE else Path(path)
    image = data.load_image(source)
    if dose is None:
        return source, _crop(image, crop), None
    config = data.DoseConfig()
    if source.suffix.lower() in (".dcm", ".dicom"):
        config = dataclasses.replace(
            config, pixel_size_mm=data.dicom_pixel_size(source)
        )
    low = data.simulate_dose(image, dose, seed, config)
    return source, _crop(low, crop), _crop(image, crop)


def _crop(image: np.ndarray, size: int | None) -> np.ndarray:
    """The centre `size` × `size` of `image` (all of it when `size` is None)."""
    from hejax.errors import InvalidInputError

    if size is None:
        return image
    h, w = image.shape
    if not 0 < size <= min(h, w):
        raise InvalidInputError(
            f"--crop must be between 1 and the image's smaller side {min(h, w)}, "
            f"got {size}"
        )
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


def _write_png(path: Path, hu: np.ndarray, source: Path) -> None:
    from skimage import io

    from hejax.ldct import data

    unit = np.clip(data.hu_to_unit(hu), 0, 1)
    io.imsave(path, (unit * 65535).astype(np.uint16), check_contrast=False)


def _write_npy(path: Path, hu: np.ndarray, source: Path) -> None:
    np.save(path, hu.astype(np.float32))


def _write_dcm(path: Path, hu: np.ndarray, source: Path) -> None:
    import pydicom

    from hejax.errors import InvalidInputError

    if source.suffix.lower() not in (".dcm", ".dicom"):
        raise InvalidInputError(
            "a .dcm output keeps the input's DICOM metadata, so the input must be "
            "DICOM; write .png or .npy instead"
        )
    ds = pydicom.dcmread(source)
    slope = float(getattr(ds, "RescaleSlope", 1.0))
    intercept = float(getattr(ds, "RescaleIntercept", 0.0))
    dtype = ds.pixel_array.dtype
    stored = np.round((hu - intercept) / slope)
    ds.Rows, ds.Columns = hu.shape  # smaller than the input after --crop
    info = np.iinfo(dtype)
    ds.PixelData = np.clip(stored, info.min, info.max).astype(dtype).tobytes()
    ds.SeriesDescription = "hejax denoised on ciphertexts"
    ds.save_as(path)


WRITERS: dict[str, Callable[[Path, np.ndarray, Path], None]] = {
    ".png": _write_png,
    ".npy": _write_npy,
    ".dcm": _write_dcm,
}


# -- the encrypted run ------------------------------------------------------------


def _denoise(args) -> Result:
    if args.transform == "coef" and args.workers > 1:
        # hejax's threads already fill the cores; OpenMP threads inside each
        # OpenFHE call would oversubscribe them (165 s against 98 s at 512).
        # Read when OpenFHE loads, so it holds unless the user set it.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    import hejax
    from hejax.ldct import data, load_pretrained

    backend = hejax.backends.get(args.backend, **_preset(args))
    source, low, normal = _input(args.input, args.dose, args.seed, args.crop)
    model, params = load_pretrained(args.model)
    x = data.hu_to_unit(low)[None, :, :, None].astype(np.float32)

    def fn(p, img):
        return model.apply({"params": p}, img)

    plain = np.asarray(fn(params, x))[0, ..., 0]
    if args.plain:
        return Result(low, normal, plain, None, None, None)
    # coef fixes its masks at compile time (they change the fixed-point scales).
    coef = args.transform == "coef"
    options = _coef_options(args, x.shape) if coef else {"unmask": args.unmask}
    program = hejax.compile(
        fn, params, x, backend=backend, transform=args.transform, **options
    )
    parallel = {"workers": args.workers} if coef else {}
    client = hejax.Client(program, **parallel)
    server = hejax.Server(program, client.public_bundle(), masks=args.masks, **parallel)
    encrypted, transcript = _run_with_bar(hejax, client, server, x, program)
    exact = None
    if coef:
        ref = program.decode_output(program.reference(x))
        exact = float(np.max(np.abs(encrypted - ref)))
    return Result(low, normal, plain, encrypted[0, ..., 0], transcript, program, exact)


def _coef_options(args, shape: tuple[int, ...]) -> dict[str, Any]:
    """Compile options of the coef transform from the command line."""
    options: dict[str, Any] = {"masks": args.masks, "input_bound": args.input_bound}
    if args.bounds == "calibrated":
        options["calibration"] = _calibration_images(shape[1:3])
        options["headroom_bits"] = args.headroom_bits
    elif args.bounds != "proven":
        from hejax.errors import InvalidInputError

        raise InvalidInputError(
            f"--bounds must be 'calibrated' or 'proven', got {args.bounds!r}"
        )
    return options


def _calibration_images(shape: tuple[int, int], count: int = 2) -> np.ndarray:
    """The model owner's calibration images: simulated low-dose phantoms.

    Random-ellipse phantoms (not the client's image) scanned at the default
    low dose, so their noise and range match what the denoiser meets.
    """
    from hejax.ldct import data

    h, w = shape
    side = max(h, w)
    config = data.DoseConfig()
    images = []
    for k in range(count):
        phantom = data.random_phantom(side, seed=1000 + k)
        low = data.simulate_dose(phantom, config.i0_low, seed=2000 + k)
        images.append(data.hu_to_unit(low)[:h, :w, None])
    return np.stack(images)


def _default_workers() -> int:
    """The cores this process may use (all of them off Linux), at most 8."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def _preset(args) -> dict[str, Any]:
    params = {} if args.preset is None else {"preset": args.preset}
    return {**params, "insecure": True} if args.insecure else params


def _run_with_bar(hejax, client, server, x, program):
    from tqdm import tqdm

    rounds = len(server.rounds)
    with tqdm(total=rounds, desc="rounds", unit="round", file=sys.stderr) as bar:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # masks="off" is explicit
            return hejax.run(client, server, x, progress=lambda rec: bar.update(1))


def _table(res: Result) -> list[tuple[str, str]]:
    from hejax.ldct import data, metrics

    rows = []
    if res.normal is not None:
        ref = data.hu_to_unit(res.normal)
        images = {"low dose": data.hu_to_unit(res.low), "plaintext": res.plain}
        if res.encrypted is not None:
            images["encrypted"] = res.encrypted
        for name, img in images.items():
            rows.append(
                (
                    f"{name}: PSNR / SSIM",
                    f"{metrics.psnr(ref, img):.2f} dB / {metrics.ssim(ref, img):.4f}",
                )
            )
    if res.encrypted is not None:
        t = res.transcript
        rows += [
            ("max |enc - plain|", f"{np.max(np.abs(res.encrypted - res.plain)):.2e}"),
            *(
                [("max |enc - fixed-point reference|", f"{res.exact:.1e}")]
                if res.exact is not None
                else []
            ),
            ("rounds", str(len(t.rounds))),
            ("bytes client -> server", f"{t.total('bytes_to_server') / 2**20:.1f} MB"),
            ("bytes server -> client", f"{t.total('bytes_to_client') / 2**20:.1f} MB"),
            ("public bundle", f"{t.bundle_bytes / 2**20:.1f} MB"),
            ("time server", f"{t.total('server_seconds'):.1f} s"),
            ("time client", f"{t.total('client_seconds'):.1f} s"),
            ("masks", t.masks),
        ]
    return rows


def _figure(res: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hejax.ldct import data

    enc = res.encrypted if res.encrypted is not None else res.plain
    diff = np.abs(enc - res.plain)
    scale = 1.0 / max(float(diff.max()), 1e-12)
    panels = [
        ("low dose", data.hu_to_unit(res.low)),
        ("encrypted result", enc),
        ("plaintext result", res.plain),
        (f"|difference| x {scale:.1e}", diff * scale),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    window = (data.hu_to_unit(np.array(-160.0)), data.hu_to_unit(np.array(240.0)))
    for ax, (title, img) in zip(axes, panels, strict=True):
        lo, hi = (0, 1) if title.startswith("|") else window
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_denoise(args) -> None:
    """``hejax denoise``: the encrypted run, its table and figure."""
    from hejax.errors import InvalidInputError

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in WRITERS:
        raise InvalidInputError(
            f"--out must end in one of {sorted(WRITERS)}, got {out.name!r}"
        )
    res = _denoise(args)
    _print_table(_table(res))
    result_unit = res.encrypted if res.encrypted is not None else res.plain
    figure = Path(args.figure) if args.figure else _default_figure(out)
    figure.parent.mkdir(parents=True, exist_ok=True)
    _figure(res, figure)
    print(f"figure: {figure}")
    if out is not None:
        from hejax.ldct import data

        out.parent.mkdir(parents=True, exist_ok=True)
        source = _input_path(args.input)
        WRITERS[out.suffix.lower()](out, data.unit_to_hu(result_unit), source)
        print(f"result: {out}")


def _input_path(path: str) -> Path:
    from hejax.ldct import data

    return data.example_slice_path() if path == EXAMPLE else Path(path)


def _default_figure(out: Path | None) -> Path:
    return (
        (out.with_name(out.stem + "-figure.png")) if out else Path("hejax-figure.png")
    )


def _print_table(rows: list[tuple[str, str]]) -> None:
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


# -- compare and info -------------------------------------------------------------


def cmd_compare(args) -> None:
    """``hejax compare``: every available backend × transform, one table."""
    import hejax
    from hejax.errors import InvalidInputError

    if args.plain:
        raise InvalidInputError("compare runs on ciphertexts; drop --plain")

    names = _choose(args.backends, hejax.backends.available(), "backend")
    names = [n for n in names if n != "clear-bfv"]
    transforms = _choose(args.transforms, hejax.transforms.names(), "transform")
    masks = args.masks
    rows = []
    for name in names:
        coef = "coefficient" in hejax.backends.get(name).capabilities.encodings
        for transform in transforms:
            if (transform == "coef") != coef:  # slot transforms need slots
                continue
            args.masks = masks if not coef or masks in ("channel", "off") else "channel"
            args.backend, args.transform = name, transform
            start = time.perf_counter()
            res = _denoise(args)
            t = res.transcript
            rows.append(
                [
                    name,
                    transform,
                    len(t.rounds),
                    f"{t.total('server_seconds'):.1f}",
                    f"{t.total('client_seconds'):.1f}",
                    f"{t.total('bytes_to_server') / 2**20:.1f}",
                    f"{t.total('bytes_to_client') / 2**20:.1f}",
                    f"{np.max(np.abs(res.encrypted - res.plain)):.1e}",
                    f"{time.perf_counter() - start:.1f}",
                ]
            )
    head = ["backend", "transform", "rounds", "server s", "client s"]
    head += ["MB up", "MB down", "max |enc-plain|", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    print(f"table: {args.out}")


def _choose(asked: str | None, known: list[str], what: str) -> list[str]:
    """The comma-separated names in `asked`, or every known one but clear."""
    from hejax.errors import InvalidInputError

    if asked is None:
        return [n for n in known if n != "clear"]
    names = [n.strip() for n in asked.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise InvalidInputError(
            f"unknown {what} {', '.join(unknown) or repr(asked)}; "
            f"available: {', '.join(known)}"
        )
    return names


def cmd_info(args) -> None:
    """``hejax info``: backends with capabilities and presets, and models."""
    import hejax
    from hejax.ldct import pretrained

    for name, state in hejax.backends.status().items():
        if state != "ok":
            print(f"{name}: unavailable — {state}")
            continue
        cls = hejax.backends.load(name)
        caps = cls().capabilities
        print(
            f"{name}: {caps.scheme}, {caps.slots} slots, depth {caps.max_depth}, "
            f"{caps.security_bits}-bit, precision {caps.precision:.1e}, "
            f"rotations {caps.rotation_cost}" + (" (hoisted)" if caps.hoisting else "")
        )
        print(f"  presets: {', '.join(cls.presets)} (default {cls.default_preset})")
    print(f"transforms: {', '.join(hejax.transforms.names())}")
    models = ", ".join(f"{p}/{v}" for p, v in pretrained.available())
    print(f"shipped models: {models}")


# -- parser -----------------------------------------------------------------


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help=f"DICOM, PNG or .npy slice, or {EXAMPLE!r}")
    p.add_argument("--model", default="all-relu", help="shipped lite RED-CNN variant")
    p.add_argument("--dose", type=float, default=None, help="simulate this I0 first")
    p.add_argument("--preset", default=None, help="backend preset")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow a preset below 128-bit security (toy sizes, baselines)",
    )
    p.add_argument(
        "--masks",
        default="element",
        help="element, channel or off (transform coef: channel or off)",
    )
    p.add_argument("--unmask", default="explicit", help="explicit or fold")
    p.add_argument(
        "--bounds",
        default="calibrated",
        help="coef: 'calibrated' on simulated phantoms, checked at run time "
        "(default), or 'proven' from the input range alone (more moduli)",
    )
    p.add_argument(
        "--input-bound",
        type=float,
        default=4.0,
        help="coef: largest input in unit scale, (HU + 1024) / 3072 (default 4: "
        "noisy bone and metal stay inside)",
    )
    p.add_argument(
        "--headroom-bits",
        type=int,
        default=2,
        help="coef: calibrated caps are the phantoms' peaks times 2^N",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=_default_workers(),
        help="coef: threads per party (default: the usable cores, at most 8)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the dose noise")
    p.add_argument("--crop", type=int, default=None, help="keep the centre N x N")
    p.add_argument("--plain", action="store_true", help="plaintext model only")


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hejax`` command."""
    top = argparse.ArgumentParser(prog="hejax", description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    den = sub.add_parser("denoise", help="denoise a slice on ciphertexts")
    _run_options(den)
    den.add_argument("--backend", default="openfhe")
    den.add_argument("--transform", default="auto")
    den.add_argument("--out", default=None, help="result .png, .dcm or .npy")
    den.add_argument("--figure", default=None, help="figure path (PNG)")
    den.set_defaults(func=cmd_denoise)
    cmp_ = sub.add_parser("compare", help="every backend x transform")
    _run_options(cmp_)
    cmp_.add_argument("--out", default="hejax-compare.md")
    cmp_.add_argument("--backends", default=None, help="comma-separated subset")
    cmp_.add_argument("--transforms", default=None, help="comma-separated subset")
    cmp_.set_defaults(func=cmd_compare)
    info = sub.add_parser("info", help="backends, presets and models")
    info.set_defaults(func=cmd_info)
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hejax`` console script."""
    from hejax.errors import HejaxError

    args = parser().parse_args(argv)
    try:
        args.func(args)
    except HejaxError as exc:
        print(f"hejax: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hejax: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
