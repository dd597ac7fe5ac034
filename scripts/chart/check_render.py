"""check-chart's consistency checks of one rendered values set (step 3 in scripts/check-chart.sh):
the manifests parse as Kubernetes objects, the Deployment agrees with the config.toml it mounts
(ports, probes, mounts, certificate files, security settings, TLS as the values ask), and the
config is laid out for `saml-validator check-config` with metadata_url tenants pointed at the
loopback metadata server.

Usage: check_render.py MANIFESTS_DIR CONFIG_OUT_DIR METADATA_PORT CHART VALUES_FILE TLS_FIXTURE
Exits 1 when any check fails, printing each check as it runs.
"""
import base64, os, re, shutil, sys, tomllib, yaml

manifests, config_dir, metadata_port, chart, values_file, tls_fixture = sys.argv[1:7]
problems = []
def check(ok, what):
    print(f"    {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        problems.append(what)

objects = {}
for name in sorted(os.listdir(manifests)):
    if name == "NOTES.txt":
        continue
    with open(os.path.join(manifests, name)) as f:
        try:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            check(False, f"{name} parses as YAML ({e})")
            continue
    check(all(isinstance(d, dict) and d.get("apiVersion") and d.get("kind") for d in docs),
          f"{name} parses as YAML ({len(docs)} object(s))")
    for d in docs:
        objects[d["kind"]] = d

deployment, service, configmap = (objects.get(k) for k in ("Deployment", "Service", "ConfigMap"))
check(deployment and service and configmap, "Deployment, Service and ConfigMap rendered")
if problems:
    sys.exit(1)

# What the values ask for: the override, else the chart's default (enough for the keys read here).
def load(path):
    if not path:
        return {}
    with open(path) as f:
        return yaml.safe_load(f) or {}
defaults, override = load(os.path.join(chart, "values.yaml")), load(values_file)
def value(*keys):
    for source in (override, defaults):
        node = source
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return node
    return None
tls_secret = value("tls", "secretName") or ""
client_ca = bool(tls_secret and value("tls", "clientCa"))
ca_secret = value("tls", "clientCaSecretName") or tls_secret

config = tomllib.loads(configmap["data"]["config.toml"])
check(True, "config.toml parses as TOML")
server = config["server"]
# [server.tls] must come last: a [server] key after its header would land in server.tls.
server_keys = set(defaults.get("server") or {}) | set(override.get("server") or {})
check(server_keys <= set(server), f"[server] keys from the values are in [server] ({len(server_keys)})")
expected_tls = None
if tls_secret:
    expected_tls = {"certificate_file": "tls/tls.crt", "private_key_file": "tls/tls.key"}
    if client_ca:
        expected_tls["client_ca_file"] = "tls/ca.crt"
        if value("tls", "allowAnyClientCertificate"):
            expected_tls["allow_any_client_certificate"] = True
check(server.get("tls") == expected_tls,
      f"[server.tls] = {server.get('tls')}" + (f" for tls.secretName {tls_secret}" if tls_secret else " (no tls.secretName: plain text)"))
def projected_paths(deployment):
    volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
    return {item["path"] for v in volumes for s in v.get("projected", {}).get("sources", [])
            for item in s.get("secret", {}).get("items", [])}
def port_of(addr):
    return int(addr.rsplit(":", 1)[1]) if addr else None
http_port, grpc_port, metrics_port = (port_of(server.get(k)) for k in ("http_addr", "grpc_addr", "metrics_addr"))

pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
container_ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
service_ports = {p["name"]: p for p in service["spec"]["ports"]}
expected = {"http": http_port, "grpc": grpc_port, "metrics": metrics_port}
for name, port in expected.items():
    if port is None:
        check(name not in container_ports and name not in service_ports,
              f"no {name} listener in config.toml, so no {name} containerPort or Service port")
        continue
    check(container_ports.get(name) == port, f"containerPort {name} = {container_ports.get(name)} matches config.toml {name} port {port}")
    sp = service_ports.get(name, {})
    check(sp.get("port") == port and sp.get("targetPort") in (name, port),
          f"Service port {name} = {sp.get('port')} -> {sp.get('targetPort')} matches {port}")

# The admin page: its own containerPort, never published by the Service, its token a file.
admin = config.get("admin") or {}
admin_port = port_of(admin.get("addr"))
check(container_ports.get("admin") == admin_port and "admin" not in service_ports
      and all(p.get("port") != admin_port for p in service_ports.values()),
      f"admin page port {admin_port}: a containerPort, not in the Service")
if admin:
    check(admin.get("token_file") == "secrets/admin-token" and "secrets/admin-token" in projected_paths(deployment),
          "[admin] token_file is the projected secrets/admin-token")

live, ready, startup = (container.get(k, {}) for k in ("livenessProbe", "readinessProbe", "startupProbe"))
check(live.get("httpGet", {}).get("path") == "/healthz" and live["httpGet"].get("port") in (http_port, "http"),
      f"livenessProbe GET /healthz on the HTTP port {http_port}")
check(ready.get("httpGet", {}).get("path") == "/readyz" and ready["httpGet"].get("port") in (http_port, "http"),
      f"readinessProbe GET /readyz on the HTTP port {http_port}")
if grpc_port and not tls_secret:
    check(startup.get("grpc", {}).get("port") == grpc_port and "httpGet" not in startup,
          f"startupProbe gRPC health on the gRPC port {grpc_port}")
else:
    get = startup.get("httpGet", {})
    why = "the kubelet's gRPC probe has no TLS" if grpc_port else "gRPC off"
    check("grpc" not in startup and get.get("path") == "/readyz" and get.get("port") in (http_port, "http"),
          f"startupProbe GET /readyz on the HTTP port, not gRPC ({why})")
scheme = "HTTPS" if tls_secret else "HTTP"
for name, probe in (("livenessProbe", live), ("readinessProbe", ready), ("startupProbe", startup)):
    if "httpGet" in probe:
        check(probe["httpGet"].get("scheme", "HTTP") == scheme, f"{name} scheme {scheme}")

psc, csc = pod.get("securityContext", {}), container.get("securityContext", {})
check(psc.get("runAsNonRoot") is True and csc.get("runAsNonRoot") is True, "runAsNonRoot (pod and container)")
check(psc.get("runAsUser") == 10001, "runAsUser 10001 (the image's user)")
check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
check((csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault")
res = container.get("resources", {})
check(bool(res.get("requests")) and bool(res.get("limits")), "resources requests and limits")
check(bool(pod.get("topologySpreadConstraints")), "topologySpreadConstraints")
annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
check("checksum/server" in annotations, "checksum/server annotation ([server] changes restart pods)")
print(f"    info checksum/config annotation {'present' if 'checksum/config' in annotations else 'absent'} (rollOnConfigChange)")

# The config must be mounted where --config points, as a whole directory (subPath mounts never
# receive ConfigMap updates, which would defeat hot reload).
args = container.get("args", [])
config_path = args[args.index("--config") + 1] if "--config" in args else None
mount_dir = os.path.dirname(config_path or "")
mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == mount_dir]
check(config_path and len(mounts) == 1 and "subPath" not in mounts[0], f"{mount_dir} mounted as a directory for --config {config_path}")
volume = next((v for v in pod.get("volumes", []) if mounts and v["name"] == mounts[0]["name"]), {})
sources = volume.get("projected", {}).get("sources", [])
check(any(s.get("configMap", {}).get("name") == configmap["metadata"]["name"] for s in sources),
      "the config volume projects the rendered ConfigMap")
projected = {}
for s in sources:
    for item in s.get("secret", {}).get("items", []):
        projected[item["path"]] = (s["secret"]["name"], item["key"])
expected_items = {}
if tls_secret:
    expected_items = {"tls/tls.crt": (tls_secret, "tls.crt"), "tls/tls.key": (tls_secret, "tls.key")}
    if client_ca:
        expected_items["tls/ca.crt"] = (ca_secret, "ca.crt")
tls_items = {path: ref for path, ref in projected.items() if path.startswith("tls/")}
check(tls_items == expected_items, "projected TLS files: "
      + (", ".join(f"{path} <- {name}[{key}]" for path, (name, key) in sorted(tls_items.items())) or "none"))
for key, path in (server.get("tls") or {}).items():
    if key.endswith("_file"):
        check(path in projected, f"[server.tls] {key} {path} is in the projected volume")
replay = config.get("replay") or {}
check(replay.get("store", "memory") == value("replay", "store"), f"[replay] store is {value('replay', 'store')}")
for key, path in replay.items():
    if key.endswith("_file"):
        check(path in projected, f"[replay] {key} {path} is in the projected volume")
check("password" not in replay, "[replay] has no literal password")
policy = objects.get("NetworkPolicy")
if policy and replay.get("store") == "redis" and value("networkPolicy", "egress"):
    egress = policy["spec"].get("egress", [])
    check(all(rule in egress for rule in value("replay", "networkPolicyEgress") or []) and bool(value("replay", "networkPolicyEgress")),
          "NetworkPolicy egress reaches the replay store")

# tenants_dir: the values' volume, mounted read-only as a whole directory outside the projected
# config volume (a mount point cannot be made inside a read-only one).
tenants_volume = value("tenantsDir", "volume") or {}
tenants_dir = config.get("tenants_dir")
if tenants_volume:
    tmounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == tenants_dir]
    check(bool(tenants_dir) and len(tmounts) == 1 and tmounts[0].get("readOnly") is True and "subPath" not in tmounts[0]
          and not tenants_dir.startswith(mount_dir + "/"),
          f"tenants_dir {tenants_dir} is a read-only directory mount outside {mount_dir}")
    tvolume = next((v for v in pod.get("volumes", []) if tmounts and v["name"] == tmounts[0]["name"]), {})
    check({k: v for k, v in tvolume.items() if k != "name"} == tenants_volume, "the tenants_dir volume is tenantsDir.volume")
else:
    check(tenants_dir is None, "no tenants_dir without tenantsDir.volume")
check(config.get("metrics") == (value("metrics", "settings") or None), f"[metrics] = metrics.settings ({config.get('metrics')})")

monitor = objects.get("ServiceMonitor")
if monitor:
    endpoint = monitor["spec"]["endpoints"][0]
    if tls_secret:
        check(endpoint.get("scheme") == "https"
              and endpoint.get("tlsConfig", {}) == (value("metrics", "serviceMonitor", "tlsConfig") or {}),
              "ServiceMonitor scrapes https with the values' tlsConfig")
        check(not endpoint.get("tlsConfig", {}).get("insecureSkipVerify"), "ServiceMonitor verifies the certificate")
    else:
        check(endpoint.get("scheme", "http") == "http" and "tlsConfig" not in endpoint, "ServiceMonitor scrapes http")
notes_path = os.path.join(manifests, "NOTES.txt")
if os.path.exists(notes_path):
    urls = re.findall(r"\bhttps?://", open(notes_path).read())
    want = "https://" if tls_secret else "http://"
    check(bool(urls) and all(u == want for u in urls), f"NOTES.txt URLs are {want}")

# Lay the volume out as the kubelet would, from the rendered ConfigMap and Secret.
os.makedirs(config_dir, exist_ok=True)
with open(os.path.join(config_dir, os.path.basename(config_path)), "w") as f:
    f.write(configmap["data"]["config.toml"])
secret = objects.get("Secret")
for s in sources:
    ref = s.get("secret")
    if not ref:
        continue
    if not secret or ref["name"] != secret["metadata"]["name"]:
        keys = [item["key"] for item in ref.get("items", [])]
        if keys and all(os.path.exists(os.path.join(tls_fixture, key)) for key in keys):
            for item in ref["items"]:
                path = os.path.join(config_dir, item["path"])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                shutil.copyfile(os.path.join(tls_fixture, item["key"]), path)
            print(f"    info secret {ref['name']} is not rendered by the chart: throwaway {', '.join(keys)} laid out")
            continue
        print(f"    info secret {ref['name']} is not rendered by the chart (existing Secret): not laid out")
        continue
    for item in ref.get("items", []):
        check(item["key"] in secret.get("data", {}), f"Secret key {item['key']} exists for {item['path']}")
        path = os.path.join(config_dir, item["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(secret["data"].get(item["key"], "")))

text = open(os.path.join(config_dir, "config.toml")).read()
# tenants_dir: a directory standing in for the volume, with one tenant file the control plane
# might write (the chart's placeholder certificate, inline).
if tenants_dir:
    local = os.path.join(config_dir, "tenants.d")
    os.makedirs(local, exist_ok=True)
    pem = defaults["certificateFiles"]["example-idp.pem"]
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    with open(os.path.join(local, "acme.toml"), "w") as f:
        f.write('idp_entity_id = "https://idp.example.invalid/acme"\n'
                'sp_entity_id = "https://www.jitbit.com/web-helpdesk/"\n'
                'acs_url = "https://acme.example.invalid/helpdesk/User/Login"\n'
                f'certificates = ["{body}"]\n')
    text = re.sub(r'(?m)^tenants_dir = .*$', 'tenants_dir = "tenants.d"', text)
    with open(os.path.join(config_dir, "config.toml"), "w") as f:
        f.write(text)
    print(f"    info tenants_dir pointed at {local} (one tenant file) for check-config")
# metadata_url tenants: fetch from the loopback copy instead of the Internet.
if "metadata_url" in text:
    text = re.sub(r'(?m)^metadata_url = .*$', f'metadata_url = "http://127.0.0.1:{metadata_port}/federationmetadata.xml"', text)
    text = re.sub(r'(?m)^allowed_hosts = .*$', 'allowed_hosts = ["127.0.0.1"]', text)
    with open(os.path.join(config_dir, "config.toml"), "w") as f:
        f.write(text)
    print(f"    info metadata_url tenants pointed at http://127.0.0.1:{metadata_port}/ for check-config")
sys.exit(1 if problems else 0)
