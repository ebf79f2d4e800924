"""The test ground: real servers on loopback (Kubernetes, Redis, RabbitMQ, Prometheus) for the
test suite and the demo. Not part of the autozero package; nothing here is mocked."""
