"""KEDA ScaledObjects written from KEDA's documented schema (keda.sh, ScaledObject specification
and the redis, rabbitmq, prometheus, cron, cpu and memory scaler pages, 2.16/2.17), each with a
trace on which KEDA's documented behaviour gives a known replica count, and the fields the
conversion must report on stderr.

The expected counts follow the HPA's arithmetic that KEDA documents: AverageValue wants
ceil(value / target) (KEDA's "20 / 5 = 4 replicas"), Value wants ceil(current x value / target)
("3 * 20 / 5 = 12"), bounded by minReplicaCount and maxReplicaCount, with no activity below the
activation value, and a cron window holding desiredReplicas. Each count is read once the trace
has been steady for minutes, past any rate policy or stabilization window.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Case:
    manifests: str  # the ScaledObject, and the TriggerAuthentication it names
    trace: str  # a CSV trace, by the converted metric names
    at: str  # when to read the simulated count
    replicas: int | None  # KEDA's count then; None: not simulated (paused)
    notes: tuple[str, ...] = ()  # fields the conversion must report on stderr
    prometheus: str | None = None
    initial: int = 0


def _case(id: str, case: Case) -> object:
    return pytest.param(case, id=id)


T = "2026-11-23T10:00:00Z"  # a Monday

CASES = [
    _case(
        "redis-list",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: votes, namespace: my-project}
spec:
  scaleTargetRef: {name: votes}
  maxReplicaCount: 20
  triggers:
    - type: redis
      metadata: {address: "redis.my-project:6379", listName: mylist, listLength: "10"}
""",
            f"time,metric,value\n{T},redis-0,95\n",
            "2026-11-23T10:05:00Z",
            10,  # ceil(95 / 10)
        ),
    ),
    _case(
        "redis-default-list-length",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: thumbnails, namespace: media}
spec:
  scaleTargetRef: {name: thumbnailer}
  pollingInterval: 15
  maxReplicaCount: 10
  triggers:
    - type: redis
      name: thumbs
      metadata: {host: redis.media, port: "6380", listName: thumbs, databaseIndex: "2"}
""",
            f"time,metric,value\n{T},thumbs,12\n",
            "2026-11-23T10:05:00Z",
            3,  # KEDA's default listLength is 5: ceil(12 / 5)
        ),
    ),
    _case(
        "redis-password-from-trigger-authentication",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: keda-trigger-auth-redis-secret, namespace: my-project}
spec:
  secretTargetRef:
    - {parameter: username, name: votes-db-secret, key: redis_username}
    - {parameter: password, name: votes-db-secret, key: redis_password}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: redis-scaledobject, namespace: my-project}
spec:
  scaleTargetRef: {name: votes}
  triggers:
    - type: redis
      metadata: {address: "localhost:6379", listName: mylist, listLength: "10"}
      authenticationRef: {name: keda-trigger-auth-redis-secret}
""",
            f"time,metric,value\n{T},redis-0,40\n",
            "2026-11-23T10:05:00Z",
            4,
            ("spec.triggers[0].authenticationRef",),
        ),
    ),
    _case(
        "redis-streams-length",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: events, namespace: my-project}
spec:
  scaleTargetRef: {name: events}
  maxReplicaCount: 10
  triggers:
    - type: redis-streams
      metadata: {address: "redis:6379", stream: events, activationLagCount: "2"}
""",
            f"time,metric,value\n{T},redis-streams-0,12\n",
            "2026-11-23T10:05:00Z",
            3,  # no consumerGroup: XLEN against streamLength, default 5: ceil(12 / 5)
        ),
    ),
    _case(
        "redis-streams-lag",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders}
  maxReplicaCount: 10
  triggers:
    - type: redis-streams
      metadata: {host: redis.shop, stream: orders, consumerGroup: workers, lagCount: "10"}
""",
            f"time,metric,value,in_flight\n{T},redis-streams-0,35,2\n",
            "2026-11-23T10:05:00Z",
            4,  # the group's lag against lagCount: ceil(35 / 10)
        ),
    ),
    _case(
        "redis-streams-pending-entries-held",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders}
  triggers:
    - type: redis-streams
      metadata: {address: "redis.shop:6379", stream: orders, consumerGroup: workers}
""",
            f"time,metric,value,in_flight\n{T},redis-streams-0,0,3\n",
            "2026-11-23T10:30:00Z",
            1,  # 3 entries read and not acknowledged: KEDA active (3 > 0), ceil(3 / 5); kept up
            ("spec.triggers[0].metadata.pendingEntriesCount",),
            initial=1,
        ),
    ),
    _case(
        "redis-below-the-activation-length",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: reports, namespace: batch}
spec:
  scaleTargetRef: {name: reporter}
  cooldownPeriod: 120
  triggers:
    - type: redis
      metadata: {address: "redis:6379", listName: reports, listLength: "5",
                 activationListLength: "5"}
""",
            f"time,metric,value\n{T},redis-0,3\n2026-11-23T10:30:00Z,redis-0,3\n",
            "2026-11-23T10:20:00Z",
            0,  # 3 is not above activationListLength 5: never active
        ),
    ),
    _case(
        "rabbitmq-http-queue-length",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders-consumer}
  pollingInterval: 15
  maxReplicaCount: 20
  triggers:
    - type: rabbitmq
      metadata: {protocol: http, host: "http://rabbitmq.shop:15672/", mode: QueueLength,
                 value: "50", queueName: orders}
""",
            f"time,metric,value\n{T},rabbitmq-0,1000\n",
            "2026-11-23T10:05:00Z",
            20,  # ceil(1000 / 50), the maximum
            ("spec.triggers[0].metadata.excludeUnacknowledged",),
        ),
    ),
    _case(
        "rabbitmq-http-ready-only-on-a-vhost",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: invoices, namespace: billing}
spec:
  scaleTargetRef: {name: invoice-consumer}
  minReplicaCount: 1
  maxReplicaCount: 10
  triggers:
    - type: rabbitmq
      metadata: {host: "http://rabbitmq.billing:15672/prod", mode: QueueLength, value: "100",
                 queueName: invoices, excludeUnacknowledged: "true"}
""",
            f"time,metric,value\n{T},rabbitmq-0,250\n",
            "2026-11-23T10:05:00Z",
            3,
            (),
            None,
            1,
        ),
    ),
    _case(
        "rabbitmq-amqp",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: rabbitmq-scaledobject, namespace: default}
spec:
  scaleTargetRef: {name: rabbitmq-deployment}
  triggers:
    - type: rabbitmq
      metadata: {protocol: amqp, host: "amqp://rabbitmq.default.svc:5672/vhost",
                 queueName: testqueue, mode: QueueLength, value: "20"}
""",
            f"time,metric,value\n{T},rabbitmq-0,100\n",
            "2026-11-23T10:05:00Z",
            5,
            ("spec.triggers[0].metadata.protocol",),
        ),
    ),
    _case(
        "rabbitmq-amqp-auth-and-deprecated-queue-length",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: keda-trigger-auth-rabbitmq-conn, namespace: default}
spec:
  secretTargetRef:
    - {parameter: username, name: keda-rabbitmq-secret, key: username}
    - {parameter: password, name: keda-rabbitmq-secret, key: password}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: rabbitmq-legacy}
spec:
  scaleTargetRef: {name: rabbitmq-deployment}
  triggers:
    - type: rabbitmq
      metadata: {host: "amqp://rabbitmq.default.svc:5672/", queueName: testqueue,
                 queueLength: "10"}
      authenticationRef: {name: keda-trigger-auth-rabbitmq-conn}
""",
            f"time,metric,value\n{T},rabbitmq-0,35\n",
            "2026-11-23T10:05:00Z",
            4,
            ("spec.triggers[0].metadata.protocol",),
        ),
    ),
    _case(
        "rabbitmq-message-rate-refused-queue-length-kept",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: events, namespace: default}
spec:
  scaleTargetRef: {name: events-consumer}
  triggers:
    - type: rabbitmq
      metadata: {protocol: http, host: "http://rabbitmq:15672/", queueName: events,
                 mode: QueueLength, value: "20", excludeUnacknowledged: "true"}
    - type: rabbitmq
      metadata: {protocol: http, host: "http://rabbitmq:15672/", queueName: events,
                 mode: MessageRate, value: "100"}
""",
            f"time,metric,value\n{T},rabbitmq-0,60\n",
            "2026-11-23T10:05:00Z",
            3,
            ("spec.triggers[1].metadata.mode",),
        ),
    ),
    _case(
        "rabbitmq-regex-max",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: incoming, namespace: default}
spec:
  scaleTargetRef: {name: incoming-consumer}
  triggers:
    - type: rabbitmq
      metadata: {protocol: http, host: "http://rabbitmq:15672/", queueName: "^.*incoming$",
                 mode: QueueLength, value: "20", useRegex: "true", operation: max,
                 excludeUnacknowledged: "true"}
""",
            f"time,metric,value\n{T},rabbitmq-0,40\n",
            "2026-11-23T10:05:00Z",
            2,  # one queue of 40: the sum and the max agree
            ("spec.triggers[0].metadata.operation",),
        ),
    ),
    _case(
        "prometheus-average-value",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: prometheus-scaledobject, namespace: default}
spec:
  scaleTargetRef: {name: my-deployment}
  minReplicaCount: 1
  maxReplicaCount: 10
  triggers:
    - type: prometheus
      metadata:
        serverAddress: http://prometheus.monitoring:9090
        threshold: "100"
        query: sum(rate(http_requests_total{deployment="my-deployment"}[2m]))
""",
            f"time,metric,value\n{T},prometheus-0,250\n",
            "2026-11-23T10:05:00Z",
            3,
            (),
            None,
            1,
        ),
    ),
    _case(
        "prometheus-value-metric-type",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: queue-latency, namespace: default}
spec:
  scaleTargetRef: {name: workers}
  minReplicaCount: 3
  maxReplicaCount: 12
  triggers:
    - type: prometheus
      metricType: Value
      metadata:
        serverAddress: http://prometheus:9090
        threshold: "5"
        query: avg(queue_time_ms)
""",
            f"time,metric,value\n{T},prometheus-0,20\n",
            "2026-11-23T10:05:00Z",
            12,  # KEDA's own example: 3 * 20 / 5 = 12
            (),
            None,
            3,
        ),
    ),
    _case(
        "prometheus-activation-bearer",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: keda-prom-creds, namespace: default}
spec:
  secretTargetRef:
    - {parameter: bearerToken, name: keda-prom-secret, key: bearerToken}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: api-scaler, namespace: default}
spec:
  scaleTargetRef: {name: api}
  maxReplicaCount: 12
  triggers:
    - type: prometheus
      metadata:
        serverAddress: http://prometheus:9090
        threshold: "100"
        activationThreshold: "5.5"
        query: sum(rate(http_requests_total{deployment="api"}[2m]))
        authModes: bearer
        ignoreNullValues: "false"
      authenticationRef: {name: keda-prom-creds}
""",
            f"time,metric,value\n{T},prometheus-0,3\n2026-11-23T10:10:00Z,prometheus-0,250\n",
            "2026-11-23T10:16:00Z",
            3,  # inactive at 3 (below 5.5); then ceil(250 / 100)
        ),
    ),
    _case(
        "prometheus-basic-unsafe-namespace",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: thanos-creds, namespace: default}
spec:
  secretTargetRef:
    - {parameter: username, name: thanos, key: user}
    - {parameter: password, name: thanos, key: pass}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: thanos-scaler, namespace: default}
spec:
  scaleTargetRef: {name: api}
  minReplicaCount: 1
  triggers:
    - type: prometheus
      metadata:
        serverAddress: https://thanos-query:9090
        threshold: "100"
        query: sum(rate(http_requests_total[2m]))
        namespace: example-namespace
        authModes: basic
        unsafeSsl: "true"
      authenticationRef: {name: thanos-creds}
""",
            f"time,metric,value\n{T},prometheus-0,450\n",
            "2026-11-23T10:05:00Z",
            5,
            ("spec.triggers[0].metadata.namespace",),
            None,
            1,
        ),
    ),
    _case(
        "cron-office-hours-with-a-queue",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: office, namespace: default}
spec:
  scaleTargetRef: {name: office-workers}
  triggers:
    - type: cron
      metadata: {timezone: Europe/Paris, start: 0 8 * * 1-5, end: 0 18 * * 1-5,
                 desiredReplicas: "4"}
    - type: redis
      metadata: {address: "redis:6379", listName: tasks}
""",
            "time,metric,value\n2026-11-23T06:00:00Z,redis-1,0\n2026-11-23T20:00:00Z,redis-1,0\n",
            "2026-11-23T09:00:00Z",  # 10:00 in Paris
            4,
            ("spec.cooldownPeriod",),
        ),
    ),
    _case(
        "cron-window-ended",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: office-evening, namespace: default}
spec:
  scaleTargetRef: {name: office-workers}
  triggers:
    - type: cron
      metadata: {timezone: Europe/Paris, start: 0 8 * * 1-5, end: 0 18 * * 1-5,
                 desiredReplicas: "4"}
    - type: redis
      metadata: {address: "redis:6379", listName: tasks}
""",
            "time,metric,value\n2026-11-23T06:00:00Z,redis-1,0\n2026-11-23T20:00:00Z,redis-1,0\n",
            "2026-11-23T18:00:00Z",  # 19:00 in Paris, past cooldownPeriod after 18:00
            0,
            ("spec.cooldownPeriod",),
        ),
    ),
    _case(
        "cron-overnight-new-york",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: nightly, namespace: default}
spec:
  scaleTargetRef: {name: nightly-workers}
  minReplicaCount: 1
  triggers:
    - type: cron
      metadata: {timezone: America/New_York, start: 0 22 * * *, end: 0 6 * * *,
                 desiredReplicas: "2"}
    - type: prometheus
      metadata: {serverAddress: "http://prometheus:9090", threshold: "10", query: sum(jobs)}
""",
            "time,metric,value\n2026-11-23T00:00:00Z,prometheus-1,0\n",
            "2026-11-23T08:00:00Z",  # 03:00 in New York
            2,
            (),
            None,
            1,
        ),
    ),
    _case(
        "idle-replica-count",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: idle, namespace: default}
spec:
  scaleTargetRef: {name: idle-workers}
  idleReplicaCount: 0
  minReplicaCount: 2
  maxReplicaCount: 10
  triggers:
    - type: redis
      metadata: {address: "redis:6379", listName: jobs, listLength: "10"}
""",
            f"time,metric,value\n{T},redis-0,5\n",
            "2026-11-23T10:01:00Z",
            2,  # active: minReplicaCount
            ("spec.idleReplicaCount",),
        ),
    ),
    _case(
        "custom-behavior-one-pod-a-minute",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: slow-start, namespace: default}
spec:
  scaleTargetRef: {name: slow-workers}
  pollingInterval: 15
  advanced:
    horizontalPodAutoscalerConfig:
      name: slow-hpa
      behavior:
        scaleUp:
          policies: [{type: Pods, value: 1, periodSeconds: 60}]
  triggers:
    - type: redis
      metadata: {address: "redis:6379", listName: jobs, listLength: "10"}
""",
            f"time,metric,value\n{T},redis-0,50\n",
            "2026-11-23T10:02:00Z",
            3,  # woken to 1 at 10:00:00, 2 at 10:00:15, 3 at 10:01:15
            ("spec.advanced.horizontalPodAutoscalerConfig.name",),
        ),
    ),
    _case(
        "paused-scale-in",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: no-scale-in
  namespace: default
  annotations: {autoscaling.keda.sh/paused-scale-in: "true"}
spec:
  scaleTargetRef: {name: sticky-workers}
  minReplicaCount: 1
  triggers:
    - type: redis
      metadata: {address: "redis:6379", listName: jobs, listLength: "10"}
""",
            f"time,metric,value\n{T},redis-0,100\n2026-11-23T10:05:00Z,redis-0,0\n",
            "2026-11-23T10:20:00Z",
            10,  # up to ceil(100 / 10), and never down
            (),
            None,
            1,
        ),
    ),
    _case(
        "paused",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: frozen
  namespace: default
  annotations: {autoscaling.keda.sh/paused: "true"}
spec:
  scaleTargetRef: {name: frozen-workers}
  fallback: {failureThreshold: 3, replicas: 6}
  triggers:
    - type: redis
      metadata: {address: "redis:6379", listName: jobs}
""",
            f"time,metric,value\n{T},redis-0,100\n",
            T,
            None,
            ("spec.fallback",),
        ),
    ),
    _case(
        "cpu-utilization-through-prometheus",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: web, namespace: web}
spec:
  scaleTargetRef: {name: frontend}
  minReplicaCount: 2
  maxReplicaCount: 10
  triggers:
    - type: cpu
      metricType: Utilization
      metadata: {value: "60"}
""",
            f"time,metric,value\n{T},cpu-0,0.9\n",
            "2026-11-23T10:05:00Z",
            10,  # a steady 90 % against 60 % grows by 1.5 each step: to the maximum
            ("spec.triggers[0]",),
            "http://prometheus.monitoring:9090",
            2,
        ),
    ),
    _case(
        "memory-average-value-through-prometheus",
        Case(
            """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: cache, namespace: web}
spec:
  scaleTargetRef: {name: cache}
  minReplicaCount: 1
  maxReplicaCount: 8
  triggers:
    - type: memory
      metricType: AverageValue
      metadata: {value: 512Mi, containerName: cache}
""",
            f"time,metric,value\n{T},memory-0,{3 * 512 * 2**20}\n",
            "2026-11-23T10:05:00Z",
            3,  # 1.5 GiB in use, 512 MiB a replica
            ("spec.triggers[0]",),
            "http://prometheus.monitoring:9090",
            1,
        ),
    ),
]

#: ScaledObjects that cannot be converted at all: the reason names the field.
REFUSED = [
    pytest.param(
        """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: strings, namespace: default}
spec:
  scaleTargetRef: {name: w}
  triggers:
    - type: redis
      metadata: {address: "redis:6379", keyName: mykey, keyValue: "1.5"}
""",
        "spec.triggers[0].metadata.keyName",
        None,
        id="redis-string-key",
    ),
    pytest.param(
        """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: mem, namespace: default}
spec:
  scaleTargetRef: {name: w}
  minReplicaCount: 1
  triggers:
    - type: memory
      metricType: Utilization
      metadata: {value: "80"}
""",
        "spec.triggers[0]: trigger not converted: memory: autozero reads memory through "
        "Prometheus; rerun with --prometheus URL",
        None,
        id="memory-without-prometheus",
    ),
    pytest.param(
        """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: kafka, namespace: default}
spec:
  scaleTargetRef: {name: w}
  triggers:
    - type: kafka
      metadata: {bootstrapServers: "kafka:9092", consumerGroup: g, topic: t}
""",
        "spec.triggers[0].type: trigger not converted: trigger type 'kafka' has no autozero source",
        None,
        id="kafka",
    ),
    pytest.param(
        """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: cluster-auth, namespace: default}
spec:
  scaleTargetRef: {name: w}
  triggers:
    - type: rabbitmq
      metadata: {host: "http://rabbitmq:15672/", queueName: q, mode: QueueLength, value: "5"}
      authenticationRef: {name: shared, kind: ClusterTriggerAuthentication}
""",
        "spec.triggers[0].authenticationRef.kind",
        None,
        id="cluster-trigger-authentication",
    ),
    pytest.param(
        """
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: rabbit-host, namespace: default}
spec:
  secretTargetRef:
    - {parameter: host, name: keda-rabbitmq-secret, key: host}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: host-in-secret, namespace: default}
spec:
  scaleTargetRef: {name: w}
  triggers:
    - type: rabbitmq
      metadata: {protocol: amqp, queueName: q, mode: QueueLength, value: "20"}
      authenticationRef: {name: rabbit-host}
""",
        "spec.triggers[0].authenticationRef: trigger not converted: the RabbitMQ host comes "
        "from a Secret",
        None,
        id="rabbitmq-host-in-a-secret",
    ),
    pytest.param(
        """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: cron-only, namespace: default}
spec:
  scaleTargetRef: {name: w}
  triggers:
    - type: cron
      metadata: {timezone: Asia/Kolkata, start: 0 6 * * *, end: 0 20 * * *,
                 desiredReplicas: "10"}
""",
        "spec.triggers: no converted trigger can wake the group",
        None,
        id="cron-only-at-zero",
    ),
    pytest.param(
        """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: monthly, namespace: default}
spec:
  scaleTargetRef: {name: w}
  minReplicaCount: 1
  triggers:
    - type: cron
      metadata: {timezone: UTC, start: 0 6 1 * *, end: 0 20 1 * *, desiredReplicas: "3"}
    - type: prometheus
      metadata: {serverAddress: "http://prometheus:9090", threshold: "10", query: sum(x)}
""",
        "spec.triggers[0].metadata: trigger not converted: start '0 6 1 * *' names a day of the "
        "month",
        "ok",
        id="cron-day-of-month-converts-the-rest",
    ),
]
