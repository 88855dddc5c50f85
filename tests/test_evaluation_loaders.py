"""Public benchmark loaders read tiny fixtures written in each release's own format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from components.evaluation import (
    BenchmarkError,
    BenchmarkFileMissing,
    ImageRef,
    benchmark_names,
    get_benchmark,
)
from components.evaluation.loaders.clevr_bind import relation_distractors

RED, BLUE = (255, 0, 0), (0, 0, 255)


def write_image(path: Path, size: tuple[int, int] = (8, 8), colour=RED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# -- SugarCrepe -------------------------------------------------------------------------
@pytest.fixture
def sugarcrepe_root(tmp_path: Path) -> Path:
    data = {
        "0": {
            "filename": "000000000139.jpg",
            "caption": "a red cube",
            "negative_caption": "a blue cube",
        },
        "7": {
            "filename": "000000000285.jpg",
            "caption": "a dog on a mat",
            "negative_caption": "a mat on a dog",
        },
    }
    write_json(tmp_path / "swap_att.json", data)
    write_image(tmp_path / "val2017" / "000000000139.jpg")
    write_image(tmp_path / "val2017" / "000000000285.jpg")
    return tmp_path


def test_sugarcrepe_keeps_noncontiguous_keys_as_ids_and_puts_caption_first(sugarcrepe_root):
    bench = get_benchmark("sugarcrepe/swap_att", sugarcrepe_root)
    assert [item.item_id for item in bench.items] == ["0", "7"]
    assert bench.items[1].texts == ("a dog on a mat", "a mat on a dog")
    assert bench.items[1].correct_text == (0,)
    assert bench.items[1].images[0] == ImageRef(sugarcrepe_root / "val2017" / "000000000285.jpg")
    assert bench.name == "sugarcrepe/swap_att" and bench.headline == "accuracy"


def test_sugarcrepe_missing_image_is_named_before_scoring(sugarcrepe_root):
    (sugarcrepe_root / "val2017" / "000000000285.jpg").unlink()
    with pytest.raises(BenchmarkFileMissing, match=r"1 image.*item 7: .*000000000285\.jpg"):
        get_benchmark("sugarcrepe/swap_att", sugarcrepe_root)


def test_sugarcrepe_missing_split_file_names_the_path(tmp_path):
    (tmp_path / "val2017").mkdir()
    with pytest.raises(BenchmarkFileMissing, match=r"swap_obj\.json does not exist"):
        get_benchmark("sugarcrepe/swap_obj", tmp_path)


def test_sugarcrepe_record_without_negative_names_item_and_key(sugarcrepe_root):
    write_json(sugarcrepe_root / "add_obj.json", {"3": {"filename": "x.jpg", "caption": "c"}})
    with pytest.raises(
        BenchmarkError, match=r"add_obj\.json: item '3' has no field 'negative_caption'"
    ):
        get_benchmark("sugarcrepe/add_obj", sugarcrepe_root)


def test_sugarcrepe_file_that_repeats_an_item_id_is_refused_naming_the_id(sugarcrepe_root):
    # json keeps the last of two equal keys; a repeated id would drop an item unseen
    record = '{"filename": "000000000139.jpg", "caption": "a", "negative_caption": "b"}'
    (sugarcrepe_root / "swap_obj.json").write_text(f'{{"5": {record}, "5": {record}}}')
    with pytest.raises(BenchmarkError, match=r"swap_obj\.json repeats the key '5'"):
        get_benchmark("sugarcrepe/swap_obj", sugarcrepe_root)


# -- ARO --------------------------------------------------------------------------------
def aro_record(image_path: str, relation: str, **extra) -> dict:
    return {
        "image_path": image_path,
        "bbox_x": 20, "bbox_y": 5, "bbox_w": 10, "bbox_h": 8,
        "true_caption": "the horse is eating the grass",
        "false_caption": "the grass is eating the horse",
        "relation_name": relation,
        **extra,
    }  # fmt: skip


@pytest.fixture
def aro_root(tmp_path: Path) -> Path:
    # Left half red, right half blue: the bbox (x=20..30, y=5..13) lies in the blue half.
    image = Image.new("RGB", (40, 30), RED)
    image.paste(BLUE, (20, 0, 40, 30))
    (tmp_path / "images").mkdir()
    image.save(tmp_path / "images" / "2315375.jpg", quality=100)
    records = [aro_record("2315375.jpg", "eating"), aro_record("2315375.jpg", "on")]
    write_json(tmp_path / "visual_genome_relation.json", records)
    attribution = [
        aro_record("authors/dir/2315375.jpg", "", attributes=["white", "black"]),
    ]
    write_json(tmp_path / "visual_genome_attribution.json", attribution)
    return tmp_path


def test_aro_relation_puts_true_caption_second_and_groups_by_relation(aro_root):
    bench = get_benchmark("aro/vg_relation", aro_root)
    item = bench.items[0]
    assert item.texts == ("the grass is eating the horse", "the horse is eating the grass")
    assert item.correct_text == (1,)
    assert [i.category for i in bench.items] == ["eating", "on"]
    assert bench.headline == "macro_accuracy" and bench.min_category_size == 1


def test_aro_bbox_crop_has_box_size_and_box_content(aro_root):
    image = get_benchmark("aro/vg_relation", aro_root).items[0].images[0].load()
    assert image.size == (10, 8)
    red, green, blue = image.getpixel((5, 4))
    assert blue > 200 and red < 60 and green < 60


def test_aro_attribution_rebases_path_and_skips_small_pairs_in_macro(aro_root):
    bench = get_benchmark("aro/vg_attribution", aro_root)
    assert bench.items[0].images[0].path == aro_root / "images" / "2315375.jpg"
    assert bench.items[0].category == "white_black"
    assert bench.min_category_size == 25


def test_aro_bad_bbox_names_record_and_field(aro_root):
    records = [aro_record("2315375.jpg", "on") | {"bbox_w": "wide"}]
    write_json(aro_root / "visual_genome_relation.json", records)
    with pytest.raises(BenchmarkError, match=r"record 0 field 'bbox_w' must be a number"):
        get_benchmark("aro/vg_relation", aro_root)


# -- WhatsUp ----------------------------------------------------------------------------
def test_whatsup_controlled_rebases_by_basename_and_reads_preposition(tmp_path):
    names = ["mug_left_of_plate", "mug_right_of_plate", "mug_on_plate", "mug_under_plate"]
    records = [
        {"image_path": f"data/controlled_images/{n}.jpeg", "caption_options": [f"{n} c{k}" for k in range(4)]}
        for n in names
    ]  # fmt: skip
    write_json(tmp_path / "controlled_images_dataset.json", records)
    for n in names:
        write_image(tmp_path / "controlled_images" / f"{n}.jpeg")
    bench = get_benchmark("whatsup/controlled_a", tmp_path)
    assert [i.category for i in bench.items] == ["left", "right", "on", "under"]
    assert (
        bench.items[0].images[0].path == tmp_path / "controlled_images" / "mug_left_of_plate.jpeg"
    )
    assert bench.items[0].texts[0] == "mug_left_of_plate c0" and len(bench.items[0].texts) == 4
    assert bench.items[0].correct_text == (0,)
    assert bench.items[2].tags == {"pair": "mug|plate|vertical", "set": "mug|plate"}
    assert bench.group_tags == ("pair", "set")


def test_whatsup_controlled_unknown_preposition_names_the_image(tmp_path):
    records = [{"image_path": "x/mug_near_plate.jpeg", "caption_options": ["a", "b", "c", "d"]}]
    write_json(tmp_path / "controlled_clevr_dataset.json", records)
    (tmp_path / "controlled_clevr").mkdir()
    with pytest.raises(BenchmarkError, match=r"record 0 image name 'x/mug_near_plate\.jpeg'"):
        get_benchmark("whatsup/controlled_b", tmp_path)


def test_whatsup_coco_spatial_builds_zero_padded_paths_and_categories(tmp_path):
    records = [[139, "a cup to the left of a plate", "a cup to the right of a plate"],
               [285, "a dog below a table", "a dog above a table"]]  # fmt: skip
    write_json(tmp_path / "coco_qa_two_obj.json", records)
    write_image(tmp_path / "val2017" / "000000000139.jpg")
    write_image(tmp_path / "val2017" / "000000000285.jpg")
    bench = get_benchmark("whatsup/coco_spatial_two", tmp_path)
    assert bench.items[0].images[0].path.name == "000000000139.jpg"
    assert bench.items[0].texts == ("a cup to the left of a plate", "a cup to the right of a plate")
    assert [i.category for i in bench.items] == ["left", "below"]


def test_whatsup_gqa_spatial_uses_plain_ids_and_last_word_for_one_object(tmp_path):
    write_json(
        tmp_path / "vg_qa_one_obj.json", [[2417, "a lamp on the left", "a lamp on the right"]]
    )
    write_image(tmp_path / "vg_images" / "2417.jpg")
    bench = get_benchmark("whatsup/gqa_spatial_one", tmp_path)
    assert bench.items[0].images[0].path == tmp_path / "vg_images" / "2417.jpg"
    assert bench.items[0].category == "left"


def test_whatsup_spatial_record_of_wrong_shape_is_named(tmp_path):
    write_json(tmp_path / "vg_qa_two_obj.json", [[1, "only one caption"]])
    (tmp_path / "vg_images").mkdir()
    with pytest.raises(BenchmarkError, match=r"record 0 must be \[image_id, correct, wrong\]"):
        get_benchmark("whatsup/gqa_spatial_two", tmp_path)


# -- NegBench ---------------------------------------------------------------------------
NEGBENCH_HEADER = ["image_path", "caption_0", "caption_1", "caption_2", "caption_3",
                   "correct_answer", "correct_answer_template"]  # fmt: skip


def test_negbench_reads_correct_answer_and_rebases_absolute_paths(tmp_path):
    rows = [["/home/authors/coco/val2017/000000000139.jpg", "a", "b", "c", "d", 2, "negation"]]
    write_csv(tmp_path / "COCO_val_mcq_llama3.1_rephrased.csv", NEGBENCH_HEADER, rows)
    write_image(tmp_path / "val2017" / "000000000139.jpg")
    bench = get_benchmark("negbench/coco_mcq", tmp_path, image_dir=tmp_path / "val2017")
    item = bench.items[0]
    assert item.images[0].path == tmp_path / "val2017" / "000000000139.jpg"
    assert item.texts == ("a", "b", "c", "d")
    assert item.correct_text == (2,)
    assert item.category == "negation"


def test_negbench_column_mapping_without_correct_column_means_first_correct(tmp_path):
    header = ["filepath", "opt_a", "opt_b", "opt_c", "opt_d"]
    write_csv(
        tmp_path / "VOC2007_mcq_llama3.1_rephrased.csv", header, [["x.jpg", "p", "q", "r", "s"]]
    )
    write_image(tmp_path / "x.jpg")
    columns = {"image": "filepath", "options": ["opt_a", "opt_b", "opt_c", "opt_d"],
               "correct": None, "category": None}  # fmt: skip
    item = get_benchmark("negbench/voc_mcq", tmp_path, columns=columns).items[0]
    assert item.correct_text == (0,) and item.texts == ("p", "q", "r", "s")


def test_negbench_missing_column_lists_the_header(tmp_path):
    write_csv(tmp_path / "COCO_val_mcq_llama3.1_rephrased.csv", ["image_path", "caption_0"], [])
    with pytest.raises(BenchmarkError, match=r"lacks column\(s\) \['caption_1'.*header is"):
        get_benchmark("negbench/coco_mcq", tmp_path)


def test_negbench_out_of_range_answer_names_the_row(tmp_path):
    rows = [["x.jpg", "a", "b", "c", "d", 4, "affirmation"]]
    write_csv(tmp_path / "COCO_val_mcq_llama3.1_rephrased.csv", NEGBENCH_HEADER, rows)
    with pytest.raises(BenchmarkError, match=r"row 2 correct answer 4 outside 4 options"):
        get_benchmark("negbench/coco_mcq", tmp_path)


# -- Winoground -------------------------------------------------------------------------
def winoground_line(k: int) -> dict:
    return {"id": k, "caption_0": f"an old person kisses a young person {k}",
            "caption_1": f"a young person kisses an old person {k}",
            "image_0": f"ex_{k}_img_0", "image_1": f"ex_{k}_img_1", "tag": "Object",
            "secondary_tag": "", "num_main_preds": 1, "collapsed_tag": "Relation"}  # fmt: skip


@pytest.mark.parametrize("annotation", ["examples.jsonl", "metadata.jsonl"])
def test_winoground_items_are_two_images_by_two_captions(tmp_path, annotation):
    lines = [json.dumps(winoground_line(k)) for k in range(2)]
    (tmp_path / annotation).write_text("\n".join(lines) + "\n")
    for k in range(2):
        for j in range(2):
            write_image(tmp_path / "images" / f"ex_{k}_img_{j}.png")
    bench = get_benchmark("winoground", tmp_path)
    item = bench.items[1]
    assert item.item_id == "1" and item.correct_text == (0, 1)
    assert [ref.path.name for ref in item.images] == ["ex_1_img_0.png", "ex_1_img_1.png"]
    assert item.category == "Relation" and bench.headline == "group_score"


def test_winoground_without_annotations_names_both_candidates(tmp_path):
    with pytest.raises(BenchmarkFileMissing, match=r"examples\.jsonl.*metadata\.jsonl"):
        get_benchmark("winoground", tmp_path)


# -- CLEVR-bind -------------------------------------------------------------------------
def test_clevr_bind_two_object_csv_puts_pos_first(tmp_path):
    header = ["file_name", "pos", "neg_0", "neg_1", "neg_2", "neg_3"]
    row = ["img_0.png", "red cube and blue sphere", "blue cube and red sphere", "n1", "n2", "n3"]
    write_csv(tmp_path / "two_object" / "val.csv", header, [row])
    write_image(tmp_path / "two_object" / "images" / "val" / "img_0.png")
    bench = get_benchmark("clevr_bind/two_object", tmp_path, split="val")
    assert bench.name == "clevr_bind/two_object/val"
    assert bench.items[0].texts[:2] == ("red cube and blue sphere", "blue cube and red sphere")
    assert bench.items[0].correct_text == (0,) and len(bench.items[0].texts) == 5


def test_clevr_bind_rel_makes_one_item_per_positive_with_reference_distractors(tmp_path):
    write_json(
        tmp_path / "rel" / "gen.json",
        {"im0.png": {"pos": ["cube left sphere", "sphere front cube"]}},
    )
    write_image(tmp_path / "rel" / "images" / "gen" / "im0.png")
    bench = get_benchmark("clevr_bind/rel", tmp_path)
    assert len(bench) == 2
    assert bench.items[0].texts == (
        "cube left sphere", "sphere left cube", "cube right sphere",
        "cylinder left sphere", "cube left cylinder",
    )  # fmt: skip
    assert bench.items[1].category == "front"


def test_clevr_bind_rel_caption_with_unknown_relation_is_named():
    with pytest.raises(BenchmarkError, match=r"'cube above sphere'"):
        relation_distractors("cube above sphere")


# -- registry ---------------------------------------------------------------------------
def test_registry_names_every_documented_suite():
    names = benchmark_names()
    for expected in ["sugarcrepe/swap_att", "aro/vg_relation", "whatsup/controlled_a",
                     "whatsup/coco_spatial_one", "negbench/coco_mcq", "winoground",
                     "clevr_bind/two_object"]:  # fmt: skip
        assert expected in names
    assert len([n for n in names if n.startswith("sugarcrepe/")]) == 7


def test_unknown_benchmark_lists_known_names(tmp_path):
    with pytest.raises(BenchmarkError, match=r"unknown benchmark 'sugarcrepe/swap'.*swap_att"):
        get_benchmark("sugarcrepe/swap", tmp_path)


def test_misspelt_option_is_reported_with_the_benchmark(sugarcrepe_root):
    with pytest.raises(BenchmarkError, match=r"bad options \['image_dri'\].*swap_att"):
        get_benchmark("sugarcrepe/swap_att", sugarcrepe_root, image_dri="x")


def test_prefix_is_prepended_to_every_candidate(sugarcrepe_root):
    bench = get_benchmark("sugarcrepe/swap_att", sugarcrepe_root, prefix="An image of ")
    assert bench.items[0].texts == ("An image of a red cube", "An image of a blue cube")


def test_check_images_false_defers_missing_images_to_load_time(sugarcrepe_root):
    (sugarcrepe_root / "val2017" / "000000000139.jpg").unlink()
    bench = get_benchmark("sugarcrepe/swap_att", sugarcrepe_root, check_images=False)
    with pytest.raises(BenchmarkFileMissing, match=r"000000000139\.jpg does not exist"):
        bench.items[0].images[0].load()


# -- the real published files (../shared/reference), read as they are -------------------

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason="needs ../shared/reference (real benchmark files)"
)


@needs_reference
@pytest.mark.parametrize(
    "split", ["add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_obj"]
)
def test_sugarcrepe_real_split_files_load_every_record(split, tmp_path):
    path = REFERENCE / "sugarcrepe" / f"{split}.json"
    records = json.loads(path.read_text())
    bench = get_benchmark(
        f"sugarcrepe/{split}", path.parent, image_dir=tmp_path, check_images=False
    )
    assert len(bench.items) == len(records)
    first_key = next(iter(records))
    item = bench.items[0]
    assert item.item_id == first_key
    assert item.texts == (records[first_key]["caption"], records[first_key]["negative_caption"])
    assert item.images[0].path.name == records[first_key]["filename"]


@needs_reference
@pytest.mark.parametrize(("subset", "rows"), [("controlled_a", 412), ("controlled_b", 408)])
def test_whatsup_real_controlled_files_load_every_row(subset, rows, tmp_path):
    root = REFERENCE / "benchmarks" / "whatsup"
    bench = get_benchmark(f"whatsup/{subset}", root, image_dir=tmp_path, check_images=False)
    assert len(bench.items) == rows
    assert all(len(item.texts) == 4 and item.correct_text == (0,) for item in bench.items)
    first = bench.items[0]
    if subset == "controlled_a":
        assert first.images[0].path.name == "beer-bottle_on_armchair.jpeg"
        assert (first.texts[0], first.category) == ("A beer bottle on a armchair", "on")


@needs_reference
def test_aro_real_vg_relation_entries_put_the_true_caption_second(tmp_path):
    root = REFERENCE / "benchmarks" / "aro"
    records = json.loads((root / "visual_genome_relation.json").read_text())
    bench = get_benchmark("aro/vg_relation", root, image_dir=tmp_path, check_images=False)
    assert len(bench.items) == len(records)
    for item, record in zip(bench.items, records, strict=True):
        assert item.correct_text == (1,)
        assert item.texts[1] == record["true_caption"]
        assert item.images[0].bbox is not None


@needs_reference
@pytest.mark.parametrize("subset", ["coco_mcq", "voc_mcq", "synthetic_mcq"])
def test_negbench_real_mcq_csv_rows_load(subset, tmp_path):
    from components.evaluation.loaders.negbench import FILES

    root = REFERENCE / "benchmarks" / "negbench" / "images"
    with (root / FILES[subset]).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    bench = get_benchmark(f"negbench/{subset}", root, image_dir=tmp_path, check_images=False)
    assert len(bench.items) == len(rows)
    assert all(len(item.correct_text) == 1 and len(item.texts) >= 2 for item in bench.items)


@needs_reference
def test_public_suite_specs_name_a_family_or_one_split(tmp_path):
    from components.evaluation.loaders.suites import parse_public_suite
    from components.platform.config import ConfigError

    names, root, family = parse_public_suite(f"sugarcrepe:{REFERENCE / 'sugarcrepe'}")
    assert family and "sugarcrepe/swap_att" in names and root.endswith("sugarcrepe")
    assert parse_public_suite("whatsup/controlled_a:/x")[0] == ["whatsup/controlled_a"]
    with pytest.raises(ConfigError, match="'sugarcreep'"):
        parse_public_suite("sugarcreep:/x")
    with pytest.raises(ConfigError, match="give the folder"):
        parse_public_suite("sugarcrepe:")
