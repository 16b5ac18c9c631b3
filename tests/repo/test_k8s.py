"""deploy/k8s stays one consistent bundle: every file a kustomization names exists and
parses, the optional parts are Kustomize components, and the KEDA ScaledObject agrees
with the worker's configuration, the input topic's partitions, the Deployment, its
Secret and the PodDisruptionBudget. (kubectl is no Debian package, so `kubectl
kustomize` itself is not run here.)"""
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "deploy", "k8s")


def docs(rel):
    with open(os.path.join(K8S, rel), encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def doc(rel, kind):
    found = [d for d in docs(rel) if d.get("kind") == kind]
    assert len(found) == 1, "%s: expected one %s" % (rel, kind)
    return found[0]


def text(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def worker_conf():
    """The key = value lines of hsqb.conf in configmap.yaml (comments dropped)."""
    conf = {}
    for line in doc("configmap.yaml", "ConfigMap")["data"]["hsqb.conf"].splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            k, v = line.split("=", 1)
            conf[k.strip()] = v.strip()
    return conf


def partitions(topic):
    """Partitions of a topic in deploy/README.md's "Topics" table."""
    m = re.search(r"^\| `%s` \| (\d+) \|" % re.escape(topic), text("deploy/README.md"), re.M)
    assert m, "deploy/README.md lists no partition count for " + topic
    return int(m.group(1))


def kustomizations():
    for dirpath, _, files in os.walk(K8S):
        if "kustomization.yaml" in files:
            yield os.path.relpath(dirpath, K8S)


def test_kustomizations_name_existing_files():
    dirs = sorted(kustomizations())
    assert dirs[0] == "."
    for d in dirs:
        k = docs(os.path.join(d, "kustomization.yaml"))[0]
        if d != ".":
            assert k["kind"] == "Component", d + ": optional parts are components"
            assert re.search(r"^#\s+- %s$" % re.escape(d), text("deploy/k8s/kustomization.yaml"),
                             re.M), "kustomization.yaml does not offer component " + d
        for res in k.get("resources", []) + k.get("components", []):
            assert os.path.exists(os.path.join(K8S, d, res)), "%s names missing %s" % (d, res)
        for gen in k.get("configMapGenerator", []):
            for f in gen.get("files", []):
                assert os.path.exists(os.path.join(K8S, d, f.split("=")[-1])), f
        for res in k.get("resources", []):
            for obj in docs(os.path.join(d, res)):
                assert obj.get("apiVersion") and obj.get("kind") and obj["metadata"]["name"], res


def test_dashboard_ships_as_a_configmap():
    k = docs("kustomization.yaml")[0]
    gens = [g for g in k.get("configMapGenerator", [])
            if any(f.split("=")[-1] == "grafana-dashboard.json" for f in g.get("files", []))]
    assert len(gens) == 1
    assert gens[0]["options"]["labels"].get("grafana_dashboard") == "1"


def test_scaledobject_follows_the_worker_and_the_topic():
    so = doc("keda/scaledobject.yaml", "ScaledObject")
    deploy = doc("deployment.yaml", "Deployment")
    pdb = doc("pdb.yaml", "PodDisruptionBudget")
    conf = worker_conf()
    spec = so["spec"]
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert spec["scaleTargetRef"]["name"] == deploy["metadata"]["name"]
    assert meta["consumerGroup"] == conf["kafka.group.id"]
    assert meta["topic"] == conf["kafka.topic.actions"]
    assert meta["bootstrapServers"] == conf["kafka.brokers"]
    assert int(meta["lagThreshold"]) > 0
    assert meta["allowIdleConsumers"] == "false"
    # KEDA must count lag the way the worker starts a new group.
    assert re.search(r'"auto\.offset\.reset", "%s"' % meta["offsetResetPolicy"],
                     text("worker/consumer.c"))
    # Replicas beyond the partition count would sit idle.
    assert spec["maxReplicaCount"] == partitions(conf["kafka.topic.actions"])
    assert deploy["spec"]["replicas"] <= spec["maxReplicaCount"]
    # A node drain the PDB allows must leave at least one replica consuming.
    assert spec["minReplicaCount"] - pdb["spec"]["maxUnavailable"] >= 1
    assert spec["minReplicaCount"] <= spec["maxReplicaCount"]


def test_keda_component_hands_replicas_to_the_hpa():
    k = docs("keda/kustomization.yaml")[0]
    ops = [(p["target"], op) for p in k["patches"] for op in yaml.safe_load(p["patch"])]
    assert any(t["kind"] == "Deployment" and t["name"] == "hsqb-worker" and
               op == {"op": "remove", "path": "/spec/replicas"} for t, op in ops)


def test_trigger_authentication_reads_the_worker_secret():
    ta = doc("keda/triggerauthentication.yaml", "TriggerAuthentication")
    deploy = doc("deployment.yaml", "Deployment")
    (secret_volume,) = [v for v in deploy["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    for ref in ta["spec"]["secretTargetRef"]:
        assert ref["name"] == secret_volume["secret"]["secretName"], ref
        # The worker side of each key is shown where an operator edits it.
        for path in ("deploy/k8s/deployment.yaml", "deploy/k8s/secret.example.yaml"):
            assert ref["key"] in text(path), "%s does not mention %s" % (path, ref["key"])
    assert "name: %s" % ta["metadata"]["name"] in text("deploy/k8s/keda/scaledobject.yaml")


def test_ingress_bundle_is_consistent():
    """The ingress Deployment runs `ingress` with the shared config and Secret, its Service
    and TLS Ingress reach its HubSpot port, and no worker selector picks its pods."""
    dep = doc("ingress.yaml", "Deployment")
    svc = doc("ingress.yaml", "Service")
    ing = doc("ingress.yaml", "Ingress")
    pdb = doc("ingress.yaml", "PodDisruptionBudget")
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    assert c["args"][0] == "ingress"
    labels = pod["metadata"]["labels"]
    for sel in (dep["spec"]["selector"]["matchLabels"], svc["spec"]["selector"],
                pdb["spec"]["selector"]["matchLabels"]):
        assert all(labels.get(k) == v for k, v in sel.items())
    worker = doc("deployment.yaml", "Deployment")
    wsel = worker["spec"]["selector"]["matchLabels"]
    assert not all(labels.get(k) == v for k, v in wsel.items()), "worker selector takes ingress pods"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert svc["spec"]["ports"][0]["targetPort"] in ports
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == svc["metadata"]["name"]
    assert backend["port"]["name"] == svc["spec"]["ports"][0]["name"]
    conf = worker_conf()
    assert conf["ingress.public_url"].startswith("https://")
    assert conf["ingress.listen"].endswith(":%d" % ports["hubspot"])
    assert conf["metrics.listen"].endswith(":%d" % ports["http"])
    # every secret file the ingress reads is a key of the Secret
    secret = doc("secret.example.yaml", "Secret")
    mount = [m["mountPath"] for m in c["volumeMounts"] if m["name"] == "secrets"][0]
    for e in c["env"]:
        if e["name"].endswith("_FILE"):
            assert e["value"].startswith(mount + "/")
            assert e["value"][len(mount) + 1:] in secret["stringData"], e
    assert "ingress.yaml" in docs("kustomization.yaml")[0]["resources"]
