{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "pgpilot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: "<release>-<chart>", or "<release>" when the release name already
contains the chart name. Truncated to 63 characters; leaves room for short suffixes such as
"-leader" through the same truncation at each use.
*/}}
{{- define "pgpilot.fullname" -}}
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

{{/*
"<name>-<version>" for the helm.sh/chart label.
*/}}
{{- define "pgpilot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable for the life of a release (Deployment selectors are immutable).
*/}}
{{- define "pgpilot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pgpilot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Standard labels on every object the chart renders.
*/}}
{{- define "pgpilot.labels" -}}
helm.sh/chart: {{ include "pgpilot.chart" . }}
{{ include "pgpilot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pgpilot
{{- end }}

{{/*
Name of the operator's ServiceAccount.
*/}}
{{- define "pgpilot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pgpilot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator's own image, "<repository>:<tag or appVersion>". Also handed to the operator
(PGPILOT_OPERATOR_IMAGE) for the Jobs it starts.
*/}}
{{- define "pgpilot.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Name of the leader-election Lease.
*/}}
{{- define "pgpilot.leaseName" -}}
{{- default (printf "%s-leader" (include "pgpilot.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
Rules the operator needs on the namespaces it watches (a ClusterRole, or one Role per watched
namespace). Least privilege, no wildcards: exactly OPERATOR_PERMISSIONS of src/api/permissions.ts,
where each row says why; src/api/permissions.test.ts fails when these rules and that table differ,
or when the code makes a call the table does not grant. Kubernetes lets the operator grant its
backup Jobs (src/builders/rbac.ts) only what it holds, so those verbs are here too.
*/}}
{{- define "pgpilot.operatorRules" -}}
- apiGroups: ["postgres.pgpilot.io"]
  resources: ["postgresqlclusters"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["postgres.pgpilot.io"]
  resources: ["postgresqlclusters/status"]
  verbs: ["patch"]
# Owner references that block deletion (OwnerReferencesPermissionEnforcement).
- apiGroups: ["postgres.pgpilot.io"]
  resources: ["postgresqlclusters/finalizers", "postgresqlbackups/finalizers"]
  verbs: ["update"]
- apiGroups: ["postgres.pgpilot.io"]
  resources: ["postgresqlbackups"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: ["postgres.pgpilot.io"]
  resources: ["postgresqlbackups/status"]
  verbs: ["patch"]
# Owned objects: informers (list, watch) and server-side apply (patch; create when missing).
- apiGroups: [""]
  resources: ["services", "configmaps", "serviceaccounts"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The NetworkPolicy of spec.networkPolicy.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# PodMonitors for clusters with monitoring on, when the Prometheus Operator's CRDs exist.
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Backup, purge and major-upgrade Jobs: created once, never changed.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "delete"]
# Generated credentials are created once and never changed by the operator; the CA and certificate
# Secrets are written with server-side apply (patch), renewal rewrites them (docs/tls.md); delete
# removes a copy of the default backup store's keys from a namespace no longer allowed to use it.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Pods: patch sets the role labels the Services select on.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "patch"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch", "patch", "delete"]
# Each cluster's <name>-primary Lease serialises promotions.
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/*
Checks on combinations of values that the JSON schema cannot express clearly.
*/}}
{{- define "pgpilot.validate" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "replicaCount=%d requires leaderElection.enabled=true: two operators without a leader would reconcile the same clusters at once" (int .Values.replicaCount)) }}
{{- end }}
{{- end }}
