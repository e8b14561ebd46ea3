import io

import numpy as np
import pytest
from conftest import png_with_header_size
from PIL import Image

from zsdemo.core.errors import ImageError
from zsdemo.engine.images import load_image


def save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_real_photo(cat_path):
    im = load_image(cat_path)
    assert im.image.mode == "RGB" and (im.width, im.height) == (451, 300)


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"this is plain text, not a picture\n", "not an image"),
])
def test_refused_files(tmp_path, content, message):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        load_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_truncated_jpeg(tmp_path, cat_path):
    buf = io.BytesIO()
    Image.open(cat_path).convert("RGB").save(buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(path)


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ImageError, match="(megapixels|too many pixels)"):
        load_image(png_with_header_size(30000, 30000), name="bomb.png")
    with pytest.raises(ImageError, match="megapixels"):
        load_image(png_with_header_size(8000, 8000), name="big.png")


def test_16bit_png_keeps_its_brightness(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = save(Image.fromarray(ramp), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(load_image(path).image)
    # Plain convert("RGB") would clip everything above 255 to white (mean near 255).
    assert 100 < rgb.mean() < 155
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255


def test_cmyk_jpeg(tmp_path):
    path = save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), tmp_path / "cmyk.jpg")
    rgb = np.asarray(load_image(path).image).astype(int)
    assert rgb.shape == (32, 32, 3)
    assert rgb[..., 0].mean() > 200 and rgb[..., 1].mean() < 60  # red stays red


def test_palette_with_transparency_goes_over_white(tmp_path):
    img = Image.new("P", (10, 10), 0)
    img.putpalette([0, 0, 0] * 256)
    path = save(img, tmp_path / "t.png", transparency=0)
    assert np.asarray(load_image(path).image).min() == 255


def test_rgba_and_greyscale(tmp_path):
    rgba = save(Image.new("RGBA", (8, 8), (255, 0, 0, 0)), tmp_path / "a.png")
    assert np.asarray(load_image(rgba).image).min() == 255
    grey = save(Image.new("L", (8, 8), 90), tmp_path / "g.png")
    assert np.asarray(load_image(grey).image).tolist()[0][0] == [90, 90, 90]


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    im = load_image(path)
    r, g, b = np.asarray(im.image).reshape(-1, 3).mean(0)
    assert r > 200 and b < 50
    assert any("first frame" in w for w in im.warnings)


def test_exif_rotation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = save(img, tmp_path / "rot.jpg", exif=exif)
    im = load_image(path)
    assert (im.width, im.height) == (20, 40)


def test_bytes_and_pil_inputs(cat_path):
    data = cat_path.read_bytes()
    assert load_image(data, name="upload.png").source == "upload.png"
    assert load_image(Image.open(cat_path)).image.mode == "RGB"


def test_file_size_limit(tmp_path, cat_path):
    with pytest.raises(ImageError, match="limit"):
        load_image(cat_path, max_bytes=1000)
