"""Sharding policies over operator replicas: pure rules (hashing, fencing), no I/O, no clock."""
