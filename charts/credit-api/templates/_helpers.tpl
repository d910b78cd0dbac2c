{{/*
Names. Kubernetes object names that become DNS labels (Services above all, and the pod host
names of the StatefulSet) may not exceed 63 characters (RFC 1123), so every name is cut to 63
and a trailing "-" left by the cut is removed. Suffixed names ("-postgresql") cut the base
first, leaving room for the suffix, so two objects never end up with the same truncated name.
*/}}
{{- define "credit-api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: the release name alone when it already contains the chart name (a release called
"credit-api" gives Service "credit-api", hence the scrape job "credit-api" of the contract),
otherwise "<release>-<chart>".
*/}}
{{- define "credit-api.fullname" -}}
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

{{/* "-postgresql" is 11 characters: the base is cut to 52 so that the whole stays within 63. */}}
{{- define "credit-api.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "credit-api.fullname" . | trunc 52 | trimSuffix "-") }}
{{- end }}

{{/* "-postgresql-initdb" is 18 characters: the base is cut to 45. */}}
{{- define "credit-api.postgresql.initdbName" -}}
{{- printf "%s-postgresql-initdb" (include "credit-api.fullname" . | trunc 45 | trimSuffix "-") }}
{{- end }}

{{/* Chart label value: "+" is not allowed in label values, and they too stop at 63. */}}
{{- define "credit-api.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels shared by every object (app.kubernetes.io/* recommended labels). */}}
{{- define "credit-api.commonLabels" -}}
helm.sh/chart: {{ include "credit-api.chart" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: credit-model-monitoring
{{- end }}

{{/* Labels of the API objects. */}}
{{- define "credit-api.labels" -}}
{{ include "credit-api.commonLabels" . }}
{{ include "credit-api.selectorLabels" . }}
{{- end }}

{{/* Selector labels of the API: stable across upgrades (a Deployment selector is immutable). */}}
{{- define "credit-api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "credit-api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end }}

{{/* Labels of the PostgreSQL objects. */}}
{{- define "credit-api.postgresql.labels" -}}
{{ include "credit-api.commonLabels" . }}
{{ include "credit-api.postgresql.selectorLabels" . }}
{{- end }}

{{- define "credit-api.postgresql.selectorLabels" -}}
app.kubernetes.io/name: {{ include "credit-api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: database
{{- end }}

{{- define "credit-api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "credit-api.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "credit-api.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The database password: postgresql.password when set; else the one already stored in the
release's Secret when it exists (so an upgrade keeps the password PostgreSQL was initialised
with), else a new random one. `lookup` returns nothing under `helm template` and `--dry-run`:
a renderer that applies the output again and again (Tilt) must pass the stored password in
postgresql.password.
*/}}
{{- define "credit-api.postgresql.password" -}}
{{- if .Values.postgresql.password }}
{{- .Values.postgresql.password }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace .Values.database.secretName }}
{{- if and $existing $existing.data (hasKey $existing.data "password") }}
{{- index $existing.data "password" | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
What the pods' database settings depend on, hashed into a pod annotation so that changing them
rolls the pods. The password is left out: generated, it never changes once created, and passed
in (Tilt passes the stored one from its second run on) it must not roll the pods either.
*/}}
{{- define "credit-api.databaseChecksum" -}}
{{- dict "database" .Values.database "postgresql" (omit .Values.postgresql "password" "resources" "nodeSelector" "tolerations" "affinity") | toJson | sha256sum }}
{{- end }}

{{/* Where the API's prediction log spool is mounted (CREDIT_API_LOG_SPOOL_DIR). */}}
{{- define "credit-api.spoolPath" -}}
/var/spool/credit-api
{{- end }}

{{/*
The spool's emptyDir sizeLimit: the app's cap (predictionLogSpool.maxSize) plus a quarter,
plus one unit. The app counts the bytes of its files; the kubelet counts the blocks the volume
uses, and evicts the pod, deleting the emptyDir and everything spooled in it, as soon as they
pass the limit. The margin covers block rounding and headers. 256Mi gives 321Mi.
*/}}
{{- define "credit-api.spoolSizeLimit" -}}
{{- $size := .Values.predictionLogSpool.maxSize -}}
{{- $number := regexFind "^[0-9]+" $size | atoi -}}
{{- $unit := regexFind "[A-Za-z]+$" $size -}}
{{- printf "%d%s" (add $number (div $number 4) 1) $unit -}}
{{- end }}
