import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import quadrant_images, random_photo
from fixtures import run_fast as run
from PIL import Image

from maskscope import ConfigError
from maskscope.cli.main import main
from maskscope.errors import ImageError
from maskscope.images import load_batch, load_image


def rgb(w=20, h=12):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "bmp"])
def test_formats_load_as_rgb_uint8(tmp_path, ext):
    path = tmp_path / f"a.{ext}"
    Image.fromarray(rgb()).save(path)
    array = load_image(path)
    assert array.shape == (12, 20, 3) and array.dtype == np.uint8


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA", "CMYK"])
def test_modes_convert_to_rgb(tmp_path, mode):
    path = tmp_path / ("a.jpg" if mode == "CMYK" else "a.png")
    Image.fromarray(rgb()).convert(mode).save(path)
    assert load_image(path).shape == (12, 20, 3)


def test_sixteen_bit_greyscale(tmp_path):
    path = tmp_path / "deep.png"
    data = (np.linspace(0, 65535, 12 * 20).reshape(12, 20)).astype(np.uint16)
    Image.fromarray(data).save(path)
    array = load_image(path)
    assert array.shape == (12, 20, 3) and array.max() >= 250 and array.min() <= 5


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    img = Image.fromarray(rgb(w=30, h=10))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(path, exif=exif)
    assert load_image(path).shape == (30, 10, 3)


def test_rgba_is_composited_on_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(path)
    assert load_image(path).min() == 255


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_text("hello, I am not a picture")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(path)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(rgb(200, 200)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        load_image(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(path)


def test_one_pixel_image(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(path)
    with pytest.raises(ImageError, match="too small"):
        load_image(path)


def test_load_batch_resizes_whole_image(tmp_path):
    paths = []
    for i, (w, h) in enumerate([(40, 20), (16, 30)]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rgb(w, h)).save(paths[-1])
    batch = load_batch(paths, size=(24, 24))
    assert batch.shape == (2, 3, 24, 24) and 0 <= float(batch.min()) and float(batch.max()) <= 1


def test_decompression_bomb_is_one_clean_line(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (15000, 15000)).save(path)  # tiny on disk, 225 MP in its header: above Pillow's limit
    with pytest.raises(ImageError) as err:
        load_image(path)
    limit = 2 * Image.MAX_IMAGE_PIXELS / 1e6
    assert str(err.value) == (f"{path}: image too large to decode safely (225 megapixels; Pillow decodes "
                              f"at most {limit:.0f})")


def _big_png(path: Path, side: int) -> Path:
    """A PNG whose header claims side × side pixels (1-bit, all zero, so it is tiny on disk)."""
    Image.new("1", (side, side)).save(path)
    return path


def test_decompression_bomb_is_skipped_like_a_bad_file_and_the_batch_survives(explain_setup, capsys):
    """Fault: explain: a 15000×15000 PNG (decompression bomb) — skipped like a bad file; the rest of the batch
    is explained."""
    tmp, flags = explain_setup
    bomb = _big_png(tmp / "bomb.png", 15000)  # above Pillow's own limit
    good = random_photo(tmp / "good.png", 1)
    out = tmp / "out"
    code = main(["explain", str(bomb), str(good), "--out", str(out), "--no-figures", *flags,
                 "--max-pixels", str(10**9)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "DecompressionBomb" not in err
    assert "bomb.png: image too large to decode safely" in err
    assert np.load(out / "good.npy").shape == (30, 40)  # the rest of the batch is finished


def test_max_pixels_skips_big_images_with_one_line_each(explain_setup, capsys):
    """Fault: explain: images above --max-pixels — skipped, one line each."""
    tmp, flags = explain_setup
    big = random_photo(tmp / "big.png", 2)  # 30 × 40 = 1200 px
    small = tmp / "small.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(small)
    out = tmp / "out"
    assert main(["explain", str(big), str(small), "--out", str(out), "--max-pixels", "1000", *flags]) == 2
    err = capsys.readouterr().err
    assert "big.png: image is 40x30 (0 megapixels), above the limit of 0.001 (--max-pixels)" in err
    assert (out / "small.npy").is_file() and not (out / "big.npy").exists()


def test_large_jpeg_is_decoded_reduced_but_the_mask_has_the_files_size(tmp_path):
    """Fault: explain: a large JPEG — decoded reduced, but the mask has the file's size."""
    from maskscope.images import load_image_reduced

    path = tmp_path / "large.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1600, 2400, 3), dtype=np.uint8)).save(path)
    array, native = load_image_reduced(path, (224, 224))
    assert native == (1600, 2400) and array.shape[0] >= 224 and array.shape[1] >= 224
    assert array.shape[0] * array.shape[1] <= 1600 * 2400 // 16  # decoded at 1/4 or less per side
    png = tmp_path / "large.png"
    Image.fromarray(np.zeros((900, 700, 3), np.uint8)).save(png)
    array, native = load_image_reduced(png, (224, 224))
    assert native == (900, 700) and array.shape[:2] == (300, 234)  # reduce(3), rounded up: still ≥ 224


METHODS = ["meaningful", "crisp", "extremal", "gradient", "gradcam", "occlusion", "rise", "center"]


@pytest.mark.parametrize("name", METHODS)
def test_an_empty_batch_is_a_config_error(model, name):
    """Fault: API: an empty batch, for every method — ConfigError."""
    with pytest.raises(ConfigError, match="empty batch"):
        run(name, model, torch.zeros(0, 3, 64, 64))


@pytest.mark.parametrize("name", ["meaningful", "gradient", "center"])
def test_numpy_images_channel_last_or_first_and_uint8_give_the_tensor_result(model, name):
    """Fault: API: numpy images, (H, W, 3) or (3, H, W), uint8 or float — the same masks as the tensor."""
    images = quadrant_images(1)
    expected = run(name, model, images).masks
    hwc = images[0].permute(1, 2, 0).numpy()
    for array in (hwc, hwc[None], images.numpy(), images[0].numpy()):
        got = run(name, model, array)
        assert isinstance(got.images, torch.Tensor) and torch.allclose(got.masks, expected, atol=1e-5)
    as_uint8 = (hwc * 255).round().astype(np.uint8)
    assert run(name, model, as_uint8).masks.shape == expected.shape


@pytest.mark.parametrize("bad", [[[0.5]], np.zeros((4, 4), np.float32), np.zeros((1, 5, 8, 8), np.float32),
                                 np.zeros((2, 8, 8, 3), np.complex64),
                                 torch.zeros(2, 3, 8, 8, dtype=torch.long)])
def test_other_image_inputs_are_config_errors(model, bad):
    """Fault: API: images of another shape or type (nested lists, 2-D, 5 channels) — ConfigError."""
    with pytest.raises(ConfigError, match="images"):
        run("gradient", model, bad)


@pytest.mark.parametrize("values, message",
                         [(float("nan"), "NaN"), (255.0, "divide by 255"), (-0.5, "[0, 1]")])
def test_nan_or_out_of_range_pixels_warn(model, values, message):
    """Fault: API: NaN, infinite or 0–255 pixels — a warning that says what is wrong."""
    images = quadrant_images(1)
    images[0, :, :4, :4] = values
    with pytest.warns(UserWarning, match=message.replace("[", r"\[").replace("]", r"\]")):
        run("center", model, images)


def test_valid_images_do_not_warn(model):
    """Fault: API: valid images — no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run("center", model, quadrant_images(1))


@pytest.mark.parametrize("kind, expected", [("loop", "symbolic link loop"),
                                            ("broken", "broken symbolic link"), ("missing", "no such file")])
def test_symlink_loops_and_broken_links_are_named(tiny, kind, expected, capsys):
    """Fault: explain: a symbolic link loop or a broken link — skipped with its cause named."""
    tmp, flags = tiny
    target = tmp / "in.png"
    if kind == "loop":
        os.symlink(tmp / "other.png", target)
        os.symlink(target, tmp / "other.png")
    elif kind == "broken":
        os.symlink(tmp / "gone.png", target)
    good = random_photo(tmp / "good.png")
    out = tmp / "o"
    code = main(["explain", str(target), str(good), "--out", str(out), "--iterations", "1", "--no-figures",
                 *flags])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and f"in.png: {expected}" in err, err
    assert np.load(out / "good.npy").shape == (30, 40)  # the rest of the batch is finished
