{{/* Names and labels (the `helm create` conventions). */}}
{{- define "clmae-serve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "clmae-serve.fullname" -}}
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

{{- define "clmae-serve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clmae-serve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "clmae-serve.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "clmae-serve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "clmae-serve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "clmae-serve.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates for keys and the database URL given as values. */}}
{{- define "clmae-serve.secretName" -}}
{{- include "clmae-serve.fullname" . }}
{{- end }}

{{/* "true" when a database URL is configured (a value or an existing Secret). */}}
{{- define "clmae-serve.hasDatabase" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{/* "true" when /app/data is a PersistentVolumeClaim: one replica, no database, persistence on. */}}
{{- define "clmae-serve.persistent" -}}
{{- if and .Values.persistence.enabled (not (include "clmae-serve.hasDatabase" .)) }}true{{ end }}
{{- end }}

{{/*
Refuses settings that cannot work: several replicas with the SQLite file of one pod (each pod would
keep its own classifiers, and a ReadWriteOnce volume attaches to one node).
*/}}
{{- define "clmae-serve.validate" -}}
{{- $replicas := int .Values.replicaCount }}
{{- if and (gt $replicas 1) (not (include "clmae-serve.hasDatabase" .)) }}
{{- fail (printf "replicaCount is %d but no database is set: more than one replica needs a shared store (database.url or database.existingSecret); one replica keeps its classifiers in SQLite on /app/data" $replicas) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) 1) (not (include "clmae-serve.hasDatabase" .)) }}
{{- fail "autoscaling.maxReplicas > 1 needs a shared store (database.url or database.existingSecret)" }}
{{- end }}
{{- if and .Values.database.url .Values.database.existingSecret }}
{{- fail "set database.url or database.existingSecret, not both" }}
{{- end }}
{{- if and .Values.apiKeys.keys .Values.apiKeys.existingSecret }}
{{- fail "set apiKeys.keys or apiKeys.existingSecret, not both" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- /* secrets only through the chart's Secret: a plain env value would print them in the Deployment */}}
{{- range $name := list "CLMAE_API_KEYS" "CLMAE_DATABASE_URL" }}
{{- if hasKey $.Values.config $name }}
{{- fail (printf "%s is a secret: set it with apiKeys / database (a Secret), not in config" $name) }}
{{- end }}
{{- range $.Values.extraEnv }}
{{- if eq .name $name }}
{{- fail (printf "%s is a secret: set it with apiKeys / database (a Secret), not in extraEnv" $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
