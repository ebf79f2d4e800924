"""Scale targets: one module per target kind (GCE MIGs, Kubernetes /scale) behind ScaleTarget."""
