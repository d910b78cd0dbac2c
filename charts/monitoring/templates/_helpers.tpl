{{/*
Names. Object names that become DNS labels (the Service above all) may not exceed 63
characters (RFC 1123), so every name is cut to 63 and a trailing "-" left by the cut removed.
Suffixed names cut the base first to leave room for the suffix, so they stay distinct.
*/}}
{{- define "monitoring.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release name alone when it already contains the chart name, else "<release>-<chart>". */}}
{{- define "monitoring.fullname" -}}
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

{{/* "-operator" is 9 characters: the base is cut to 54 so the whole stays within 63. */}}
{{- define "monitoring.operator.fullname" -}}
{{- printf "%s-operator" (include "monitoring.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/* Chart label value: "+" is not allowed in label values, and they too stop at 63. */}}
{{- define "monitoring.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels shared by every object (app.kubernetes.io/* recommended labels), without component. */}}
{{- define "monitoring.commonLabels" -}}
helm.sh/chart: {{ include "monitoring.chart" . }}
app.kubernetes.io/name: {{ include "monitoring.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.operator.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: model-monitoring
{{- end }}

{{/* Labels of the operator's objects. */}}
{{- define "monitoring.labels" -}}
{{ include "monitoring.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Selector labels: stable across upgrades (a Deployment selector is immutable). */}}
{{- define "monitoring.selectorLabels" -}}
app.kubernetes.io/name: {{ include "monitoring.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "monitoring.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "monitoring.operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "monitoring.operator.image" -}}
{{- printf "%s:%s" .Values.operator.image.repository (.Values.operator.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "monitoring.driftJob.image" -}}
{{- printf "%s:%s" .Values.driftJob.image.repository (.Values.driftJob.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* "-reports-ui" is 11 characters: the base is cut to 52 so the whole stays within 63. */}}
{{- define "monitoring.reportsUi.fullname" -}}
{{- printf "%s-reports-ui" (include "monitoring.fullname" . | trunc 52 | trimSuffix "-") }}
{{- end }}

{{/* Labels of the Evidently UI's objects. */}}
{{- define "monitoring.reportsUi.labels" -}}
{{ include "monitoring.commonLabels" . }}
app.kubernetes.io/component: reports-ui
{{- end }}

{{- define "monitoring.reportsUi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "monitoring.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: reports-ui
{{- end }}

{{/* The namespaces of the reports claims (and of their UIs), as a JSON list. */}}
{{- define "monitoring.reports.namespaces" -}}
{{- .Values.reports.persistence.namespaces | default (list .Release.Namespace) | toJson }}
{{- end }}

{{/*
The UI's base URL in each namespace, as the JSON object the operator reads
(MODELMONITOR_REPORTS_UI_URLS): empty without a UI or an externalURL, so no link is rendered.
One URL for several UIs would link some monitors to another namespace's UI: refused.
*/}}
{{- define "monitoring.reportsUi.urls" -}}
{{- $ui := .Values.reports.ui }}
{{- $urls := dict }}
{{- if and $ui.enabled $ui.externalURL }}
{{- $namespaces := include "monitoring.reports.namespaces" . | fromJsonArray }}
{{- if and (gt (len $namespaces) 1) (not (contains "{namespace}" $ui.externalURL)) }}
{{- fail "reports.ui.externalURL: with several namespaces each has its own UI; put {namespace} in the URL" }}
{{- end }}
{{- range $namespaces }}
{{- $_ := set $urls . (replace "{namespace}" . $ui.externalURL) }}
{{- end }}
{{- end }}
{{- $urls | toJson }}
{{- end }}
