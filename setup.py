from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [line.strip() for line in (here / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

setup(
    name="mindcv-twins",
    version="0.1.0",
    description="MindSpore model zoo in the style of MindCV, centred on the Twins vision transformers (PCPVT, SVT)",
    long_description=(here / "README.md").read_text(encoding="utf-8") if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mindcv", "mindcv.*"]),
    package_data={"mindcv.data": ["imagenet_classes.txt"], "mindcv.kernels": ["cpu_kernels.cc"]},
    python_requires=">=3.9",
    install_requires=requirements,
    extras_require={
        "convert": ["torch", "safetensors"],  # reading PyTorch checkpoints
        "demo": ["scikit-learn", "matplotlib"],  # the digits demo dataset, training curves
    },
    license="Apache-2.0",
)
