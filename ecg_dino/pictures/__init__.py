"""Dense-feature pictures of an ECG: patch-token PCA colours, class-token attention, clean-versus-noisy similarity."""
