"""Reference image preprocessing for quantbench's Rust port: Pillow decodes, converts to RGB as transformers'
`convert_to_rgb` does (alpha composited over white), resizes with `Image.BICUBIC`; then BLIP's rescale
(1/255) and CLIP mean/std normalisation as BlipImageProcessor applies them (numpy, float32).

Writes tests/fixtures/image_reference.json (and the two synthetic inputs tests/fixtures/shape64.png,
tests/fixtures/rgba.png). Usage: python tools/make_image_fixtures.py   Needs: pip install pillow numpy
"""
import hashlib
import json

import numpy as np
from PIL import Image, ImageDraw

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def synthetic():
    # An easy-VQA-like 64x64 picture: a red circle and a blue rectangle on white.
    im = Image.new("RGB", (64, 64), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.ellipse((8, 10, 36, 38), fill=(220, 30, 30))
    d.rectangle((40, 36, 60, 58), fill=(30, 60, 200))
    im.save("tests/fixtures/shape64.png")
    # RGBA with every alpha level over a colour gradient.
    rgba = Image.new("RGBA", (40, 30))
    rgba.putdata([(x * 6, y * 8, 255 - x * 6, (x * 30 + y * 7) % 256) for y in range(30) for x in range(40)])
    rgba.save("tests/fixtures/rgba.png")


def to_rgb(im):
    if im.mode == "RGB":
        return im
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


CASES = [
    ("datasets/images/chelsea.png", 384, 384),
    ("datasets/images/coffee.png", 384, 384),
    ("datasets/images/camera.png", 384, 384),
    ("datasets/images/rocket.jpg", 384, 384),
    ("datasets/images/chelsea.png", 97, 13),
    ("tests/fixtures/shape64.png", 384, 384),
    ("tests/fixtures/rgba.png", 384, 384),
    ("tests/fixtures/rgba.png", 40, 7),
]


def main():
    synthetic()
    out = []
    for path, w, h in CASES:
        src = Image.open(path)
        mode = src.mode
        rgb = to_rgb(src)
        decoded = np.asarray(rgb, dtype=np.uint8)
        resized = np.asarray(rgb.resize((w, h), resample=Image.BICUBIC), dtype=np.uint8)
        pixel_values = ((resized.astype(np.float64) * (1 / 255)).astype(np.float32) - MEAN) / STD
        pixel_values = pixel_values.transpose(2, 0, 1)  # CHW, as the model takes it
        rng = np.random.default_rng(0)
        ys, xs = rng.integers(0, h, 24), rng.integers(0, w, 24)
        out.append({
            "image": path,
            "mode": mode,
            "size": [w, h],
            "decoded_sha256": hashlib.sha256(decoded.tobytes()).hexdigest(),
            "decoded_mean": float(decoded.astype(np.float64).mean()),
            "resized_sha256": hashlib.sha256(resized.tobytes()).hexdigest(),
            "resized_mean": float(resized.astype(np.float64).mean()),
            "samples": [[int(x), int(y), resized[y, x].tolist()] for x, y in zip(xs, ys)],
            "pixel_values": [[c, int(y), int(x), float(pixel_values[c, y, x])]
                             for c, (x, y) in zip([0, 1, 2] * 8, zip(xs, ys))],
        })
    with open("tests/fixtures/image_reference.json", "w") as f:
        json.dump({"pillow": Image.__version__, "numpy": np.__version__, "cases": out}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
