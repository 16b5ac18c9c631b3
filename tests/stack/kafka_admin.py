#!/usr/bin/python3
"""kafka_admin.py - the few admin calls the test stack makes on a real Apache Kafka.

Run with Debian's /usr/bin/python3 (python3-kafka): a client the worker shares nothing
with, so a broker the worker cannot use is not hidden by a shared bug.

    kafka_admin.py wait BOOTSTRAP BROKERS SECONDS
        until the cluster's metadata lists BROKERS brokers and its controller answers
    kafka_admin.py create-topics BOOTSTRAP RF NAME:PARTITIONS[:KEY=VALUE,...]...
        create the topics (replication factor RF, topic configs after the second colon),
        and wait until every partition has a leader; a topic that exists is left alone
    kafka_admin.py set-config BOOTSTRAP TOPIC KEY=VALUE...
        change topic configs (incremental: the others keep their value)
    kafka_admin.py leaders BOOTSTRAP TOPIC
        print "partition leader" lines
Exit status 0 on success, 1 with a message on stderr otherwise.
"""
import logging
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.structs import TopicPartition

logging.getLogger("kafka").setLevel(logging.CRITICAL)


def admin(bootstrap, timeout_ms=10000):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms,
                            client_id="hsqb-stack-admin")


def cmd_wait(bootstrap, brokers, seconds):
    deadline = time.monotonic() + float(seconds)
    last = None
    while time.monotonic() < deadline:
        try:
            a = admin(bootstrap, 3000)
            try:
                c = a.describe_cluster()
                if len(c.get("brokers", [])) >= int(brokers) and c.get("controller_id", -1) >= 0:
                    return 0
                last = "%d of %s brokers" % (len(c.get("brokers", [])), brokers)
            finally:
                a.close()
        except Exception as e:  # not listening yet, or still starting
            last = repr(e)
        time.sleep(0.2)
    print("kafka_admin: cluster at %s not ready within %ss: %s" % (bootstrap, seconds, last),
          file=sys.stderr)
    return 1


def parse_topic(spec):
    parts = spec.split(":", 2)
    configs = {}
    if len(parts) == 3 and parts[2]:
        for kv in parts[2].split(","):
            k, v = kv.split("=", 1)
            configs[k] = v
    return parts[0], int(parts[1]), configs


def partition_leaders(bootstrap, topics):
    c = KafkaConsumer(bootstrap_servers=bootstrap, client_id="hsqb-stack-admin")
    try:
        c.topics()  # forces a metadata refresh
        cl = c._client.cluster
        out = {}
        for t in topics:
            parts = cl.partitions_for_topic(t) or set()
            out[t] = {p: cl.leader_for_partition(TopicPartition(t, p)) for p in parts}
        return out
    finally:
        c.close()


def cmd_create(bootstrap, rf, specs):
    topics = [parse_topic(s) for s in specs]
    a = admin(bootstrap)
    try:
        for name, parts, configs in topics:
            try:
                a.create_topics([NewTopic(name, parts, int(rf), topic_configs=configs)],
                                timeout_ms=20000)
            except TopicAlreadyExistsError:
                pass
    finally:
        a.close()
    want = {name: parts for name, parts, _ in topics}
    deadline = time.monotonic() + 30
    while True:
        got = partition_leaders(bootstrap, list(want))
        short = {t: n for t, n in want.items()
                 if sum(1 for ld in got.get(t, {}).values() if ld is not None and ld >= 0) < n}
        if not short:
            return 0
        if time.monotonic() > deadline:
            print("kafka_admin: partitions without a leader: %r" % short, file=sys.stderr)
            return 1
        time.sleep(0.2)


def cmd_set_config(bootstrap, topic, kvs):
    configs = dict(kv.split("=", 1) for kv in kvs)
    a = admin(bootstrap)
    try:
        # python3-kafka 2.0 has AlterConfigs (not the incremental API): send the topic's
        # current dynamic configs with ours on top, so nothing else is reset.
        cur = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        keep = {}
        for resp in cur:
            for res in resp.resources:
                for entry in res[4]:
                    name, value, _ro, is_default = entry[0], entry[1], entry[2], entry[3]
                    if not is_default and value is not None:
                        keep[name] = value
        keep.update(configs)
        a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=keep)])
    finally:
        a.close()
    return 0


def cmd_leaders(bootstrap, topic):
    for p, ld in sorted(partition_leaders(bootstrap, [topic])[topic].items()):
        print(p, ld)
    return 0


def main(argv):
    if len(argv) >= 4 and argv[0] == "wait":
        return cmd_wait(argv[1], argv[2], argv[3])
    if len(argv) >= 4 and argv[0] == "create-topics":
        return cmd_create(argv[1], argv[2], argv[3:])
    if len(argv) >= 4 and argv[0] == "set-config":
        return cmd_set_config(argv[1], argv[2], argv[3:])
    if len(argv) == 3 and argv[0] == "leaders":
        return cmd_leaders(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
