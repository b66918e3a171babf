{{/* Full name of the release's objects. */}}
{{- define "array-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "array-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "array-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the operator pods. */}}
{{- define "array-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* ServiceAccount name. */}}
{{- define "array-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "array-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the leader-election Lease (the Lease rule names it). A shard
(arraySelector set) left with the default name gets "<fullname>-leader", so
two shards in one namespace never share a Lease (each must lead its own
arrays at the same time). Unsharded installs keep the default: renaming a
running install's Lease lets old and new replicas lead together. */}}
{{- define "array-operator.leaseName" -}}
{{- if and .Values.arraySelector (eq .Values.leaderElection.leaseName "array-operator-leader") -}}
{{- printf "%s-leader" (include "array-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- .Values.leaderElection.leaseName -}}
{{- end -}}
{{- end -}}

{{/* The watched namespaces, comma-separated (empty: every namespace):
watchNamespaces plus the deprecated watchNamespace, each once. */}}
{{- define "array-operator.watchNamespaces" -}}
{{- $namespaces := .Values.watchNamespaces | default list -}}
{{- with .Values.watchNamespace -}}
{{- $namespaces = append $namespaces . -}}
{{- end -}}
{{- $namespaces | uniq | join "," -}}
{{- end -}}

{{/* The image reference: a digest pins it, else the tag (default: the
chart's appVersion). */}}
{{- define "array-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}
