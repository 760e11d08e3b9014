"""MindCV's ImageNet defaults, on MindCV's scale: mean and std of 0-255 pixel values."""

DEFAULT_CROP_PCT = 0.875
# Lists, as MindCV's, so that comparisons with MindCV's values hold.
IMAGENET_DEFAULT_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IMAGENET_DEFAULT_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]
