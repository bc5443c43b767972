import numpy as np
import pytest
from PIL import Image

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
