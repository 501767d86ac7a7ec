"""ecg-dino: a lead-agnostic ECG Vision Transformer pretrained with the DINOv3 objective."""

__version__ = "0.1.0"
