"""infer.py and export.py: exported graphs compute the model's logits; predictions are the model's."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import mindspore as ms
from mindspore import nn

from mindcv.data import create_transforms
from mindcv.kernels import has_bf16_instructions
from mindcv.models import create_model
from mindcv.models.layers import Mlp
from mindcv.deploy.export import export_model

from ..helpers import run_script

NUM_CLASSES = 10
CLASS_NAMES = [f"class-{chr(ord('a') + i)}" for i in range(NUM_CLASSES)]
SMALL_SIZE = ["--image_size", "64", "64"]


def seeded_model(name):
    """A random-init model whose logits are of order 1, so that the tolerances below are tight relative to them."""
    ms.set_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES)
    weight = model.head.weight
    weight.set_data(ms.Tensor(np.random.RandomState(0).normal(0, 1, weight.shape).astype(np.float32)))
    model.set_train(False)
    return model


def random_input(height, width):
    return np.random.RandomState(1).normal(0, 1, (1, 3, height, width)).astype(np.float32)


# Each family once (an export takes 30 s): PCPVT at the usual size, SVT at a non-square one, where its windows
# are padded and every grid reshape must keep height and width apart.
@pytest.mark.parametrize("name, size", [("pcpvt_small", (224, 224)), ("svt_small", (96, 160))],
                         ids=["pcpvt_small-224x224", "svt_small-96x160"])
def test_exported_mindir_and_onnx_give_the_model_logits(name, size, tmp_path, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    model = seeded_model(name)
    params_before = [p.name for p in model.get_parameters()]
    x = random_input(*size)
    expected = model(ms.Tensor(x)).asnumpy()

    mindir = export_model(model, "MINDIR", size)
    assert mindir == f"{name}_{size[0]}x{size[1]}_bs1.mindir"
    mindir_logits = nn.GraphCell(ms.load(mindir))(ms.Tensor(x)).asnumpy()
    # The export holds MindSpore's operators; the model here runs the fused CPU kernels: fp32 rounding apart.
    np.testing.assert_allclose(mindir_logits, expected, rtol=0, atol=1e-4)

    onnx = export_model(model, "ONNX", size, output=str(tmp_path / "model"))
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(onnx_logits, expected, rtol=0, atol=1e-4)
    assert [p.name for p in model.get_parameters()] == params_before
    # restored after ONNX
    assert all(type(block.mlp) is Mlp and not block.mlp.act.erf_free and block.mlp.fused is not None
               for stage in model.blocks for block in stage)


def test_onnx_export_succeeds_after_a_failed_direct_export(tmp_path):
    model = seeded_model("pcpvt_small")
    x = ms.Tensor(random_input(64, 64))
    # A direct export fails: on Erf, or on the fused CPU kernels (custom operators) where they are in use.
    with pytest.raises(RuntimeError):
        ms.export(model, x, file_name=str(tmp_path / "direct"), file_format="ONNX")
    assert export_model(model, "ONNX", (64, 64), output=str(tmp_path / "model")) == str(tmp_path / "model.onnx")


def save_checkpoint_with_names(model, folder):
    path = os.path.join(folder, "model.ckpt")
    ms.save_checkpoint(model, path)
    with open(os.path.join(folder, "class_names.txt"), "w") as f:
        f.write("\n".join(CLASS_NAMES) + "\n")
    return path


def write_images(folder, count):
    rng = np.random.RandomState(2)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.randint(0, 256, (90 + 10 * i, 120, 3), dtype=np.uint8)).save(f"{folder}/{i}.png")
    return [os.path.join(folder, f"{i}.png") for i in range(count)]


def model_probabilities(model, paths, size):
    cfg = model.default_cfg
    transforms = create_transforms("", size, is_training=False, crop_pct=cfg["crop_pct"],
                                   interpolation=cfg["interpolation"], mean=cfg["mean"], std=cfg["std"])
    images = []
    for path in paths:
        image = np.fromfile(path, np.uint8)
        for transform in transforms:
            image = transform(image)
        images.append(image)
    logits = model(ms.Tensor(np.stack(images))).asnumpy().astype(np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_infer_gives_the_model_predictions_with_the_class_names_beside_the_checkpoint(tmp_path):
    model = seeded_model("svt_small")
    ckpt = save_checkpoint_with_names(model, tmp_path)
    paths = write_images(tmp_path / "images", 3)
    with open(tmp_path / "images" / "broken.jpg", "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 not a jpeg")

    result = run_script("infer.py", "--model", "svt_small", "--ckpt_path", ckpt, *SMALL_SIZE, "--batch_size", "2",
                        "--topk", "3", "--json", tmp_path / "images")
    predictions = json.loads(result.stdout)
    assert f"warning: skipped {tmp_path / 'images' / 'broken.jpg'}" in result.stderr
    assert [p["image"] for p in predictions] == paths
    expected = model_probabilities(model, paths, (64, 64))
    for prediction, probabilities in zip(predictions, expected):
        top = prediction["top_k"]
        assert [p["class_id"] for p in top] == list(np.argsort(-probabilities)[:3])
        assert [p["label"] for p in top] == [CLASS_NAMES[p["class_id"]] for p in top]
        np.testing.assert_allclose([p["probability"] for p in top], np.sort(probabilities)[::-1][:3], atol=1e-5)


@pytest.mark.skipif(not has_bf16_instructions(), reason="this CPU has no bf16 instructions")
def test_infer_in_bf16_gives_the_fp32_probabilities_to_bf16_precision(tmp_path):
    model = seeded_model("pcpvt_small")
    ckpt = save_checkpoint_with_names(model, tmp_path)
    paths = write_images(tmp_path / "images", 3)
    result = run_script("infer.py", "--model", "pcpvt_small", "--ckpt_path", ckpt, *SMALL_SIZE, "--topk",
                        str(NUM_CLASSES), "--json", "--precision", "bf16", *paths)
    expected = model_probabilities(model, paths, (64, 64))
    got = np.zeros_like(expected)
    for row, prediction in enumerate(json.loads(result.stdout)):
        for p in prediction["top_k"]:
            got[row, p["class_id"]] = p["probability"]
    assert 0 < np.abs(got - expected).max() < 0.01


def test_infer_with_no_readable_image_fails_with_one_line(tmp_path):
    ckpt = save_checkpoint_with_names(seeded_model("pcpvt_small"), tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = run_script("infer.py", "--model", "pcpvt_small", "--ckpt_path", ckpt, *SMALL_SIZE, broken, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"warning: skipped {broken}: truncated PNG (no IEND chunk)",
                                                  "error: None of the 1 images could be read."]


def test_infer_rejects_num_classes_that_do_not_match_the_checkpoint(tmp_path):
    ckpt = save_checkpoint_with_names(seeded_model("pcpvt_small"), tmp_path)
    image = write_images(tmp_path / "images", 1)[0]
    result = run_script("infer.py", "--model", "pcpvt_small", "--ckpt_path", ckpt, "--num_classes", "1000", image,
                        check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: --num_classes 1000 does not match {ckpt}, whose classifier has "
                                     f"{NUM_CLASSES} classes.")


def test_export_cli_writes_a_mindir_of_the_checkpoint(tmp_path):
    model = seeded_model("svt_small")
    ckpt = save_checkpoint_with_names(model, tmp_path)
    result = run_script("export.py", "--model", "svt_small", "--ckpt_path", ckpt, "--image_size", "64", "96",
                        "--output", tmp_path / "svt")
    assert result.stdout.strip() == (f"Wrote {tmp_path / 'svt.mindir'} (MINDIR: input 1x3x64x96 float32, "
                                     f"output 1x{NUM_CLASSES} logits)")
    x = random_input(64, 96)
    exported = nn.GraphCell(ms.load(str(tmp_path / "svt.mindir")))(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(exported, model(ms.Tensor(x)).asnumpy(), rtol=0, atol=1e-4)


def test_export_to_air_off_ascend_fails_with_one_line(tmp_path):
    result = run_script("export.py", "--model", "svt_small", "--ckpt_path", tmp_path / "any.ckpt", "--format", "AIR",
                        check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: AIR export needs an Ascend device; this run's device is CPU. "
                                     "Export MINDIR (MindSpore, MindSpore Lite) or ONNX instead.")
