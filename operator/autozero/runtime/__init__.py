"""One lifecycle for every policy, shared by the operator and `autozero run`."""
