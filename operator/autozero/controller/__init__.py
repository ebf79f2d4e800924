"""The kopf operator: handlers, the reconcile loop, and status/Event/metrics reporting."""
