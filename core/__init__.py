"""The base layer: what every process shares and nothing above it defines.

- ``messages``: the wire format (JSON header + raw buffers, versioned, validated on receipt);
- ``transport``: ZeroMQ sockets with linger 0, bounded queues and timed receives;
- ``security``: ZeroMQ CURVE for endpoints that leave the host, and the key files;
- ``configtools``: typed dataclass configs from YAML with strict checking.

It imports no component (capture, inference, aggregator), no benchmark, training or app code
(tests/test_layers.py checks it).
"""
