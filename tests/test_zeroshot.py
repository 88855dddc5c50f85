"""Zero-shot classification on an ImageFolder the test renders: counts, accuracy, skips."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import SIMPLE_IMAGENET_TEMPLATES
from PIL import Image

from components.evaluation.zeroshot import ZeroShotConfig, image_folder, zero_shot_accuracy
from components.models.backbone import build_backbone

COLORS = {"a_red": (220, 20, 20), "b_green": (20, 200, 20), "c_blue": (20, 20, 220)}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder")
    for name, rgb in COLORS.items():
        (root / name).mkdir()
        for i in range(4):
            shade = tuple(max(0, c - 30 * i) for c in rgb)
            Image.new("RGB", (40, 40), shade).save(root / name / f"{i}.png")
    (root / "c_blue" / "broken.png").write_bytes(b"not a png")
    names = root / "classnames.txt"
    names.write_text("red square\ngreen square\nblue square\n")
    return root, names


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_backbone("tiny", vision_cfg={"layers": 1}, text_cfg={"layers": 1}).eval()


def test_image_folder_reads_classes_in_sorted_order_with_the_classnames_file(folder):
    root, names = folder
    paths, labels, classnames = image_folder(root, names)
    assert classnames == ["red square", "green square", "blue square"]
    assert len(paths) == 13 and labels.count(2) == 5 and labels[:4] == [0, 0, 0, 0]
    assert image_folder(root)[2] == ["a red", "b green", "c blue"]


def test_classnames_file_of_the_wrong_length_is_an_error_naming_it(folder, tmp_path):
    root, _ = folder
    short = tmp_path / "names.txt"
    short.write_text("red\ngreen\n")
    with pytest.raises(ValueError, match=r"names\.txt: 2 class names for 3 class folders"):
        image_folder(root, short)


def test_accuracy_is_the_argmax_over_mean_prompt_embeddings_and_corrupt_images_are_skips(
    folder, backbone
):
    root, names = folder
    result = zero_shot_accuracy(backbone, ZeroShotConfig(root=str(root), classnames=str(names)))
    assert (result["images"], result["classes"], result["skipped"]) == (12, 3, 1)
    assert result["top5"] == 1.0  # 3 classes: the top 3 always hold the answer
    # The same number, computed independently.
    with torch.no_grad():
        classes = []
        for name in ["red square", "green square", "blue square"]:
            prompts = backbone.tokenize([t(name) for t in SIMPLE_IMAGENET_TEMPLATES])
            classes.append(
                F.normalize(F.normalize(backbone.encode_text(prompts), dim=-1).mean(0), dim=0)
            )
        correct = 0
        for label, name in enumerate(COLORS):
            for i in range(4):
                pixels = backbone.preprocess(Image.open(root / name / f"{i}.png").convert("RGB"))
                image = F.normalize(backbone.encode_image(pixels[None]), dim=-1)[0]
                correct += int(torch.stack(classes).mv(image).argmax()) == label
    assert result["top1"] == pytest.approx(correct / 12)


def test_unknown_template_set_is_an_error(folder, backbone):
    root, names = folder
    with pytest.raises(ValueError, match="templates must be one of"):
        zero_shot_accuracy(backbone, ZeroShotConfig(root=str(root), templates="fancy"))
