"""`autozero convert`: other autoscalers' objects as ScalingPolicies (KEDA's, in `keda`)."""
