"""Downloading images: ``seg.collector.download.download`` against a plain sequential ``requests.get`` loop.

A loopback HTTP server (``http.server.ThreadingHTTPServer``, HTTP/1.1 keep-alive, run in a child process so that it
does not share the clients' GIL) serves N distinct generated 640 x 480 JPEGs (seeded smooth colour fields with pixel
noise and a few shapes, quality 85; unrelated pictures, so none is a near-duplicate of another). Every response waits
a fixed ``--latency`` first (20 ms by default) to stand for a real network's round trip and server time; on loopback
the transfer itself is nearly free.

Contenders, in the same run, on the same server:
    baseline   for each URL in turn: ``requests.get(url, timeout=20)``, then the body written to a file.
    seg        ``download(urls, out, options=DownloadOptions(allow_private=True, host_rate=0))``: the defaults (8
               workers, near-duplicate removal at 4 bits) except that loopback is allowed and the per-host rate limit
               is off (all images are on one host; the default 4 requests/s would make the run take N/4 s).
    seg-1      the same with ``workers=1``: what verifying, hashing and the manifest cost without concurrency.

Both must produce N files; seg must keep all N (no duplicates). Prints images/s and the ratio seg / baseline.

Example:
    .venv/bin/python benchmarks/bench_download.py                  # 500 images, 20 ms latency
    .venv/bin/python benchmarks/bench_download.py --images 200 --latency 0.05 --repeat 3
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import shutil
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def make_jpeg(rng: np.random.Generator, noise: np.ndarray) -> bytes:
    """One 640 x 480 JPEG: a bicubic colour field, pixel noise (``noise`` rolled at random) and a few random rectangles
    and ellipses."""
    from PIL import Image, ImageDraw

    coarse = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
    field = np.asarray(Image.fromarray(coarse, "RGB").resize((640, 480), Image.Resampling.BICUBIC), np.float32)
    field += np.roll(noise, tuple(int(v) for v in rng.integers(0, 480, 2)), axis=(0, 1))
    image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 8))):
        x0, y0 = (int(v) for v in rng.integers(0, 560, 2))
        box = [x0, y0 % 400, x0 + int(rng.integers(20, 200)), y0 % 400 + int(rng.integers(20, 200))]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)(box, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def serve(bodies: list[bytes], latency: float, port_queue) -> None:
    """Child process: serve ``/<i>.jpg`` forever, each response after ``latency`` seconds."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as real servers do; else keep-alive replies wait for delayed ACKs (40 ms)

        def do_GET(self) -> None:
            time.sleep(latency)
            try:
                body = bodies[int(self.path.strip("/").removesuffix(".jpg"))]
            except (ValueError, IndexError):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def baseline(urls: list[str], out: Path) -> int:
    import requests

    for i, url in enumerate(urls):
        response = requests.get(url, timeout=20)
        response.raise_for_status()
        (out / f"{i}.jpg").write_bytes(response.content)
    return len(list(out.iterdir()))


def seg_download(urls: list[str], out: Path, workers: int) -> int:
    from seg.collector.download import DownloadOptions, download

    report = download(urls, out, options=DownloadOptions(allow_private=True, host_rate=0, workers=workers))
    if report["kept"] != len(urls) or report["failed"] or report["duplicates"]:
        raise SystemExit(f"seg did not keep every image: {report}")
    return len(list((out / "images").iterdir()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500, help="distinct JPEGs served (default 500)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds before each response (default 0.02)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender, round robin; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-single", action="store_true", help="skip the seg workers=1 reference run")
    args = parser.parse_args()

    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    noise = rng.standard_normal((480, 640, 3), dtype=np.float32) * 8
    bodies = [make_jpeg(rng, noise) for _ in range(args.images)]
    size = sum(map(len, bodies))
    print(f"{args.images} JPEGs of 640x480, {size / 2**20:.1f} MiB, generated in {time.perf_counter() - start:.1f} s")

    ports = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(bodies, args.latency, ports), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    urls = [f"http://127.0.0.1:{port}/{i}.jpg" for i in range(args.images)]

    contenders = {
        "baseline": lambda out: baseline(urls, out),
        "seg": lambda out: seg_download(urls, out, workers=8),
    }
    if not args.no_single:
        contenders["seg-1"] = lambda out: seg_download(urls, out, workers=1)
    best: dict[str, float] = {}
    root = HERE / "out" / "download"
    try:
        for run in range(args.repeat):
            for name, contender in contenders.items():
                out = root / name
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                began = time.perf_counter()
                files = contender(out)
                elapsed = time.perf_counter() - began
                if files != args.images:
                    raise SystemExit(f"{name} wrote {files} files, expected {args.images}")
                best[name] = min(best.get(name, elapsed), elapsed)
                print(f"run {run + 1} {name:<9} {elapsed:7.2f} s  {args.images / elapsed:7.1f} images/s")
    finally:
        server.terminate()
        server.join()

    print(f"\nlatency {args.latency * 1000:.0f} ms per request, {os.cpu_count()} CPUs; best of {args.repeat}:")
    for name, elapsed in best.items():
        print(
            f"  {name:<9} {elapsed:7.2f} s  {args.images / elapsed:7.1f} images/s  {size / 2**20 / elapsed:6.1f} MiB/s"
        )
    print(f"ratio seg / baseline (images/s): {best['baseline'] / best['seg']:.2f}x")


if __name__ == "__main__":
    main()
