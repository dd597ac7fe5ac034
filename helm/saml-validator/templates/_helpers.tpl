{{/* Names and labels, the usual Helm way. */}}
{{- define "saml-validator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "saml-validator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "saml-validator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "saml-validator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "saml-validator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "saml-validator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* "host:port" for the TOML; IPv6 hosts need brackets. */}}
{{- define "saml-validator.addr" -}}
{{- $host := index . 0 }}{{ $port := index . 1 }}
{{- if contains ":" $host }}[{{ $host }}]:{{ int64 $port }}{{ else }}{{ $host }}:{{ int64 $port }}{{ end }}
{{- end }}

{{/*
One TOML value. Strings go through toJson: a JSON string is a valid TOML basic string (same
escapes), so PEM newlines and quotes survive. Numbers arrive as float64 (Helm decodes values
through JSON) and must print as integers.
*/}}
{{- define "saml-validator.tomlValue" -}}
{{- if kindIs "string" . }}{{ toJson . }}
{{- else if kindIs "bool" . }}{{ . }}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) }}{{ int64 . }}
{{- else if kindIs "slice" . }}[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "saml-validator.tomlValue" $v }}{{ end }}]
{{- else }}{{ fail (printf "cannot write %v (%s) as a TOML value" . (kindOf .)) }}
{{- end }}
{{- end }}

{{/* key = value lines of a flat map, keys sorted; nested maps are skipped (the caller writes them as tables). */}}
{{- define "saml-validator.tomlPairs" -}}
{{- range $key, $value := . }}
{{- if not (kindIs "map" $value) }}
{{ $key }} = {{ include "saml-validator.tomlValue" $value }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The [server] table. Kept separate so its checksum can roll the pods on every change of it:
the service reads [server] only at start-up, unlike tenants, which it hot-reloads.
*/}}
{{- define "saml-validator.serverToml" -}}
{{- $http := int64 .Values.ports.http }}{{ $grpc := int64 .Values.ports.grpc }}{{ $metrics := int64 .Values.ports.metrics }}
{{- if and .Values.grpc.enabled (eq $grpc $http) }}{{ fail "ports.grpc must differ from ports.http" }}{{ end }}
{{- if and .Values.metrics.separatePort (or (eq $metrics $http) (and .Values.grpc.enabled (eq $metrics $grpc))) }}{{ fail "ports.metrics must differ from ports.http and ports.grpc" }}{{ end -}}
[server]
http_addr = {{ include "saml-validator.addr" (list .Values.listenHost .Values.ports.http) | quote }}
{{- if .Values.grpc.enabled }}
grpc_addr = {{ include "saml-validator.addr" (list .Values.listenHost .Values.ports.grpc) | quote }}
{{- end }}
{{- if .Values.metrics.separatePort }}
metrics_addr = {{ include "saml-validator.addr" (list .Values.listenHost .Values.ports.metrics) | quote }}
{{- end }}
{{- include "saml-validator.tomlPairs" .Values.server }}
{{- $tls := .Values.tls }}
{{- if and (or $tls.clientCa $tls.clientCaSecretName) (not $tls.secretName) }}{{ fail "tls.clientCa and tls.clientCaSecretName need tls.secretName: mutual TLS runs over TLS" }}{{ end }}
{{- if and $tls.clientCaSecretName (not $tls.clientCa) }}{{ fail "tls.clientCaSecretName is read only with tls.clientCa: true" }}{{ end }}
{{- if $tls.secretName }}
{{- /* Last: every key after a table header belongs to that table, so [server] keys must not follow. */}}

[server.tls]
certificate_file = "tls/tls.crt"
private_key_file = "tls/tls.key"
{{- if $tls.clientCa }}
client_ca_file = "tls/ca.crt"
{{- if $tls.allowAnyClientCertificate }}
allow_any_client_certificate = true
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The [replay] table (read only at start-up, like [server]: its checksum rolls the pods). The
password and the CA are files projected from Secrets, never values in the ConfigMap.
*/}}
{{- define "saml-validator.replayToml" -}}
{{- with .Values.replay }}
{{- if eq .store "redis" }}
{{- $sentinels := (.sentinel | default dict).urls }}
{{- if and (not .url) (not .clusterUrls) (not $sentinels) }}{{ fail "replay.store redis needs replay.url, replay.sentinel.urls or replay.clusterUrls" }}{{ end }}
{{- if gt (len (compact (list (.url | default "") (ternary "c" "" (not (empty .clusterUrls))) (ternary "s" "" (not (empty $sentinels)))))) 1 }}{{ fail "replay: set one of url, sentinel.urls or clusterUrls" }}{{ end }}
[replay]
store = "redis"
max_assertion_age_seconds = {{ int64 .maxAssertionAgeSeconds }}
{{- with .url }}
url = {{ . | quote }}
{{- end }}
{{- with .clusterUrls }}
cluster_urls = {{ include "saml-validator.tomlValue" . }}
{{- end }}
{{- with $sentinels }}
sentinel_urls = {{ include "saml-validator.tomlValue" . }}
sentinel_master_name = {{ required "replay.sentinel.masterName is required with replay.sentinel.urls" $.Values.replay.sentinel.masterName | quote }}
{{- with $.Values.replay.sentinel.username }}
sentinel_username = {{ . | quote }}
{{- end }}
{{- if $.Values.replay.sentinel.existingSecret }}
sentinel_password_file = "secrets/sentinel-password"
{{- end }}
{{- end }}
{{- with .username }}
username = {{ . | quote }}
{{- end }}
{{- if .existingSecret }}
password_file = "secrets/redis-password"
{{- end }}
{{- if .caSecretName }}
ca_file = "secrets/redis-ca.pem"
{{- end }}
key_prefix = {{ .keyPrefix | quote }}
timeout_ms = {{ int64 .timeoutMs }}
{{- if .minReplicasAcked }}
min_replicas_acked = {{ int64 .minReplicasAcked }}
{{- end }}
{{- if .allowMemoryFallbackWhenUnavailable }}
allow_memory_fallback_when_unavailable = true
{{- end }}
{{- end }}
{{- else }}
[replay]
max_assertion_age_seconds = {{ int64 .maxAssertionAgeSeconds }}
{{- end }}
{{- end }}

{{/*
Where tenantsDir.volume is mounted: outside the projected config volume, since a mount point
cannot be created inside a read-only ConfigMap/projected volume.
*/}}
{{- define "saml-validator.tenantsDirPath" -}}
/var/lib/saml-validator/tenants.d
{{- end }}

{{/* The whole config.toml the service reads. */}}
{{- define "saml-validator.configToml" -}}
# Rendered by the saml-validator Helm chart from its values: change the values, not this file.
{{- if and (not .Values.tenants) (not .Values.tenantsDir.volume) }}{{ fail "tenants is empty and tenantsDir.volume unset: the service would have no tenant" }}{{ end }}
{{- if .Values.tenantsDir.volume }}
{{- /* A top-level key: it must come before the first table header. */}}
tenants_dir = {{ include "saml-validator.tenantsDirPath" . | quote }}
{{ end }}
{{ include "saml-validator.serverToml" . }}

{{- with (include "saml-validator.replayToml" .) }}

{{ . }}
{{- end }}

[logging]
{{- include "saml-validator.tomlPairs" .Values.logging }}
{{- with .Values.metadata }}

[metadata]
{{- include "saml-validator.tomlPairs" . }}
{{- end }}
{{- with .Values.metrics.settings }}

[metrics]
{{- include "saml-validator.tomlPairs" . }}
{{- end }}
{{- with .Values.limits }}

[limits]
{{- include "saml-validator.tomlPairs" . }}
{{- end }}
{{- with .Values.diagnostics }}

[diagnostics]
{{- include "saml-validator.tomlPairs" . }}
{{- end }}
{{- if .Values.admin.enabled }}

[admin]
enabled = true
{{- /* Without TLS, loopback only: kubectl port-forward reaches it, the network never sees the token. */}}
addr = {{ include "saml-validator.addr" (list (ternary .Values.listenHost "127.0.0.1" (not (empty .Values.tls.secretName))) .Values.ports.admin) | quote }}
token_file = "secrets/admin-token"
{{- end }}
{{- range .Values.tenants }}

[[tenants]]
{{- include "saml-validator.tomlPairs" . }}
{{- with .attribute_mapping }}
[tenants.attribute_mapping]
{{- include "saml-validator.tomlPairs" . }}
{{- end }}
{{- end }}
{{- range .Values.callers }}
{{- if and .client_certificate_sha256 (not $.Values.tls.clientCa) }}{{ fail (printf "callers: %s has client_certificate_sha256, which needs mutual TLS (tls.secretName and tls.clientCa)" .name) }}{{ end }}

[[callers]]
{{- include "saml-validator.tomlPairs" . }}
{{- end }}
{{- end }}

