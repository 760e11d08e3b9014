"""Building blocks shared by the models: fused CPU kernels."""
