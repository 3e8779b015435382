"""The full-size EEGPT probe in onnxruntime: per-window cost and the shortest hop.

The released EEGPT encoder's shape (embedding 512, depth 8, 8 heads, 4 summary
tokens; about 25 M parameters) with RANDOM weights (the real ones are the
user's), plus the linear probe, exported as ``emomon train`` exports it (torch's
dynamo exporter, fixed 32 channels x 1024 samples, parity-checked), then timed in
onnxruntime on one window (batch 1) with 1 intra-op thread (what ``emomon
stream`` uses per stream) and with 2. The shortest hop a stream sustains is
:func:`emomon.realtime.model.min_hop_s` of the 1-thread median (headroom for the
rest of the pipeline); ``emomon stream`` measures the cost itself at start-up
and refuses a shorter ``--hop`` (one line).

Usage: python benchmarks/bench_eegpt.py [--repeats 10]
Results: benchmarks/results/eegpt.json and the README table.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from _common import parse_args, parser, update_readme_table, write_result

from emomon.models import build_model
from emomon.models.eegpt import N_TIMES, random_encoder, save_checkpoint
from emomon.offline.export import export_onnx
from emomon.realtime.model import min_hop_s

#: 32 channels of the encoder's dictionary (DEAP's montage).
CHANNELS = ("Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1",
            "P3", "P7", "PO3", "O1", "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8",
            "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4",
            "O2")  # fmt: skip


def time_session(path: Path, threads: int, repeats: int) -> list[float]:
    """Seconds of ``repeats`` batch-1 runs after two warm-up runs."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        str(path), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    x = (np.random.default_rng(0).standard_normal((1, 32, N_TIMES)) * 20).astype(
        np.float32
    )
    for _ in range(2):
        sess.run(None, {"eeg": x})
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, {"eeg": x})
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--repeats", type=int, default=10)
    args = parse_args(ap)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "full.ckpt"
        save_checkpoint(random_encoder("full", seed=0), ckpt)
        model = build_model(
            "eegpt",
            input_shape=(32, N_TIMES),
            tasks={"valence": 2, "arousal": 2},
            checkpoint=str(ckpt),
            ch_names=CHANNELS,
        ).eval()
        n_enc = sum(p.numel() for p in model.encoder.parameters())
        n_probe = model.n_parameters(trainable_only=True)
        path = Path(tmp) / "eegpt.onnx"
        t0 = time.perf_counter()
        parity = export_onnx(
            model,
            input_shape=(32, N_TIMES),
            input_name="eeg",
            path=path,
            exporter="dynamo",
            n_check=2,
        )
        export_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        runs = {k: time_session(path, k, args.repeats) for k in (1, 2)}
    med = {k: float(np.median(v)) for k, v in runs.items()}
    hop = min_hop_s(med[1])
    result = {
        "encoder_parameters": n_enc,
        "probe_parameters": n_probe,
        "onnx_mb": round(size_mb, 1),
        "export_s": round(export_s, 1),
        "parity_max_abs": parity,
        "repeats": args.repeats,
        "window_s_1_thread": runs[1],
        "window_s_2_threads": runs[2],
        "median_s_1_thread": med[1],
        "median_s_2_threads": med[2],
        "min_hop_s": hop,
    }
    path = write_result("eegpt", result)
    print(f"wrote {path}")
    print(
        f"encoder {n_enc / 1e6:.1f} M params; per window {med[1] * 1e3:.0f} ms "
        f"(1 thread), {med[2] * 1e3:.0f} ms (2 threads); shortest hop {hop:g} s"
    )
    if not args.no_readme:
        update_readme_table(
            "eegpt",
            f"| EEGPT full size, random weights, 32 ch x 4 s (median of "
            f"{args.repeats}) | value |\n"
            "|---|---|\n"
            f"| encoder / probe parameters | {n_enc / 1e6:.1f} M / "
            f"{n_probe / 1e3:.1f} k |\n"
            f"| model.onnx size, dynamo export time, parity | {size_mb:.0f} MB, "
            f"{export_s:.0f} s, {parity:.1e} |\n"
            f"| onnxruntime per window, 1 thread (as `emomon stream`) | "
            f"{med[1] * 1e3:.0f} ms |\n"
            f"| onnxruntime per window, 2 threads | {med[2] * 1e3:.0f} ms |\n"
            f"| shortest hop a stream sustains (`--hop` below is refused) | "
            f"{hop:g} s |",
        )


if __name__ == "__main__":
    main()
