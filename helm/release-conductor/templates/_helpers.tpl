{{/* Names, labels and the values every component shares. */}}

{{- define "conductor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "conductor.fullname" -}}
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

{{/* The name of one component's objects: "<fullname>-<component>", cut to fit a DNS label. */}}
{{- define "conductor.componentName" -}}
{{- $full := include "conductor.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-" }}
{{- printf "%s-%s" $full .component }}
{{- end }}

{{- define "conductor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "conductor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "conductor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "conductor.labels" -}}
helm.sh/chart: {{ include "conductor.chart" . }}
{{ include "conductor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: release-conductor
{{- end }}

{{/* Labels of one component: call with (dict "root" $ "component" "intake"). */}}
{{- define "conductor.componentSelectorLabels" -}}
{{ include "conductor.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "conductor.componentLabels" -}}
{{ include "conductor.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "conductor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "conductor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "conductor.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates (webhook secret, Octopus API key, external Redis URL). */}}
{{- define "conductor.secretName" -}}
{{- include "conductor.fullname" . }}
{{- end }}

{{/* The Secret holding the Octopus API key and the webhook secret. */}}
{{- define "conductor.credentialsSecretName" -}}
{{- default (include "conductor.secretName" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* "true" when the Redis URL comes from values.redis.external.url through the chart's Secret. */}}
{{- define "conductor.redisUrlInChartSecret" -}}
{{- if and (not .Values.redis.bundled.enabled) (not .Values.redis.external.existingSecret) }}true{{- end }}
{{- end }}

{{/* "true" when the chart has to create its Secret. */}}
{{- define "conductor.createSecret" -}}
{{- if or (not .Values.secrets.existingSecret) (include "conductor.redisUrlInChartSecret" .) }}true{{- end }}
{{- end }}

{{- define "conductor.redisName" -}}
{{- include "conductor.componentName" (dict "root" . "component" "redis") }}
{{- end }}

{{/* The worker's grace period: above the job timeout, so a worker finishes its job before it is killed. */}}
{{- define "conductor.workerGracePeriod" -}}
{{- $timeout := int64 .Values.config.jobTimeoutSeconds }}
{{- $grace := .Values.worker.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $grace }}
{{- add $timeout 30 }}
{{- else if le (int64 $grace) $timeout }}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must be above config.jobTimeoutSeconds (%d): Kubernetes kills a worker still running a job when its grace period ends. Leave it unset to get jobTimeoutSeconds + 30." (int64 $grace) $timeout) }}
{{- else }}
{{- int64 $grace }}
{{- end }}
{{- end }}

{{/* "true" when Octopus is configured: a URL, and an API key from secrets.octopusApiKey or
secrets.existingSecret. Without them `conductor reconcile` and `conductor scheduler` exit at once, so the
chart leaves them out instead of running pods in CrashLoopBackOff (NOTES.txt says so). */}}
{{- define "conductor.octopusConfigured" -}}
{{- if and .Values.config.octopusUrl (or .Values.secrets.existingSecret .Values.secrets.octopusApiKey) }}true{{- end }}
{{- end }}

{{/* "true" when the reconciler Deployment is rendered: reconciler.enabled, and Octopus configured. */}}
{{- define "conductor.reconcilerEnabled" -}}
{{- if and .Values.reconciler.enabled (include "conductor.octopusConfigured" .) }}true{{- end }}
{{- end }}

{{/* "true" when the scheduler Deployment is rendered: scheduler.enabled, and Octopus configured. */}}
{{- define "conductor.schedulerEnabled" -}}
{{- if and .Values.scheduler.enabled (include "conductor.octopusConfigured" .) }}true{{- end }}
{{- end }}

{{/* The conductor's own Deployments, in order: the intake, the workers, then the reconciler and the
scheduler when they are rendered. As a comma-separated string (templates cannot return lists). */}}
{{- define "conductor.components" -}}
{{- $components := list "intake" "worker" }}
{{- if include "conductor.reconcilerEnabled" . }}
{{- $components = append $components "reconciler" }}
{{- end }}
{{- if include "conductor.schedulerEnabled" . }}
{{- $components = append $components "scheduler" }}
{{- end }}
{{- join "," $components }}
{{- end }}

{{/* Settings the conductor refuses to start with, refused at render time instead. Included by configmap.yaml. */}}
{{- define "conductor.validateConfig" -}}
{{- $dedupe := int64 .Values.config.dedupeWindowSeconds }}
{{- $lookback := int64 .Values.config.reconcileLookbackSeconds }}
{{- if ge $lookback $dedupe }}
{{- fail (printf "config.reconcileLookbackSeconds (%d) must be below config.dedupeWindowSeconds (%d): the reconciler's first pass would queue again events whose dedupe records have expired, so every conductor process refuses to start with CONDUCTOR_RECONCILE_LOOKBACK_SECONDS >= CONDUCTOR_DEDUPE_WINDOW_SECONDS. Lower the lookback (default 3600) or raise the dedupe window." $lookback $dedupe) }}
{{- end }}
{{- if include "conductor.reconcilerEnabled" . }}
{{- $interval := int64 .Values.reconciler.intervalSeconds }}
{{- if ge $interval $dedupe }}
{{- fail (printf "reconciler.intervalSeconds (%d) must be below config.dedupeWindowSeconds (%d): an event a webhook brought just after one pass would be read by the next after its dedupe record expired, and be queued twice." $interval $dedupe) }}
{{- end }}
{{- end }}
{{- end }}

{{/* A PodDisruptionBudget's spec limit: minAvailable when given, else maxUnavailable. */}}
{{- define "conductor.pdbLimit" -}}
{{- $min := .minAvailable }}
{{- $max := .maxUnavailable }}
{{- if not (or (kindIs "invalid" $min) (eq (toString $min) "")) }}
minAvailable: {{ if kindIs "string" $min }}{{ $min | quote }}{{ else }}{{ int64 $min }}{{ end }}
{{- else if not (or (kindIs "invalid" $max) (eq (toString $max) "")) }}
maxUnavailable: {{ if kindIs "string" $max }}{{ $max | quote }}{{ else }}{{ int64 $max }}{{ end }}
{{- else }}
{{- fail "a podDisruptionBudget needs minAvailable or maxUnavailable" }}
{{- end }}
{{- end }}

{{/* Pod annotations that roll the pods when the configuration or the rules change. */}}
{{- define "conductor.checksumAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/rules: {{ include (print .Template.BasePath "/rules-configmap.yaml") . | sha256sum }}
{{- end }}

{{/* Environment of a conductor container: secrets by reference only (plain config comes from the
ConfigMap). Call with (dict "root" $ "webhookSecret" bool "octopusApiKey" bool "apiTokens" bool): each
component gets only the secrets it uses. */}}
{{- define "conductor.env" -}}
{{- $root := .root }}
{{- $credentials := include "conductor.credentialsSecretName" $root }}
{{- if .webhookSecret }}
- name: CONDUCTOR_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $credentials }}
      key: {{ $root.Values.secrets.keys.webhookSecret }}
{{- end }}
{{- if and .octopusApiKey (or $root.Values.secrets.existingSecret $root.Values.secrets.octopusApiKey) }}
- name: CONDUCTOR_OCTOPUS_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $credentials }}
      key: {{ $root.Values.secrets.keys.octopusApiKey }}
{{- end }}
{{- if .apiTokens }}
{{- range $variable, $name := dict "CONDUCTOR_READ_TOKENS" "readTokens" "CONDUCTOR_WRITE_TOKENS" "writeTokens" }}
{{- if or $root.Values.secrets.existingSecret (index $root.Values.secrets $name) }}
- name: {{ $variable }}
  valueFrom:
    secretKeyRef:
      name: {{ $credentials }}
      key: {{ index $root.Values.secrets.keys $name | default (kebabcase $name) }}
      {{- if $root.Values.secrets.existingSecret }}
      {{- /* An existing Secret may not hold tokens: the API then stays shut (403). */}}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if not $root.Values.redis.bundled.enabled }}
- name: CONDUCTOR_REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- if $root.Values.redis.external.existingSecret }}
      name: {{ $root.Values.redis.external.existingSecret }}
      key: {{ $root.Values.redis.external.existingSecretKey }}
      {{- else }}
      name: {{ include "conductor.secretName" $root }}
      key: redis-url
      {{- end }}
{{- end }}
{{- end }}

{{/* Volumes shared by the conductor pods: a writable /tmp and, when rules are given, the rules file. */}}
{{- define "conductor.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpDir.sizeLimit }}
{{- if .Values.rules }}
- name: rules
  configMap:
    name: {{ include "conductor.componentName" (dict "root" . "component" "rules") }}
{{- end }}
{{- end }}

{{- define "conductor.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.rules }}
- name: rules
  mountPath: /etc/conductor
  readOnly: true
{{- end }}
{{- end }}

{{/* Topology spread constraints, with the component's selector filled in where the user left it out. */}}
{{- define "conductor.topologySpread" -}}
{{- $constraints := list }}
{{- range .constraints }}
{{- $constraint := deepCopy . }}
{{- if not (hasKey $constraint "labelSelector") }}
{{- $_ := set $constraint "labelSelector" (dict "matchLabels" (include "conductor.componentSelectorLabels" (dict "root" $.root "component" $.component) | fromYaml)) }}
{{- end }}
{{- $constraints = append $constraints $constraint }}
{{- end }}
{{- toYaml $constraints }}
{{- end }}

{{/* The notify Secret: notify.existingSecret, else the one the chart creates. */}}
{{- define "conductor.notifySecretName" -}}
{{- default (include "conductor.componentName" (dict "root" . "component" "notify")) .Values.notify.existingSecret }}
{{- end }}

{{/* The notify Secret's keys the workers read, as "variable=key" lines: those the existing Secret holds
(its key names), or those the chart puts in its own from values. Empty when there is none. */}}
{{- define "conductor.notifyKeys" -}}
{{- $notify := .Values.notify }}
{{- if or $notify.existingSecret $notify.webhookSigningSecret }}
{{- with $notify.keys.webhookSigningSecret }}
CONDUCTOR_NOTIFY_WEBHOOK_SECRET_FILE={{ . }}
{{ end }}
{{- end }}
{{- if or $notify.existingSecret $notify.smtpPassword }}
{{- with $notify.keys.smtpPassword }}
CONDUCTOR_SMTP_PASSWORD_FILE={{ . }}
{{ end }}
{{- end }}
{{- end }}

{{/* The workers' environment naming the notify secrets' files (only the workers deliver notifications). */}}
{{- define "conductor.notifyEnv" -}}
{{- range $line := splitList "\n" (include "conductor.notifyKeys" .) }}
{{- if $line }}
{{- $pair := splitList "=" $line }}
- name: {{ index $pair 0 }}
  value: {{ printf "/etc/conductor-notify/%s" (index $pair 1) | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "conductor.notifyVolume" -}}
{{- if include "conductor.notifyKeys" . }}
- name: notify-secrets
  secret:
    secretName: {{ include "conductor.notifySecretName" . }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "conductor.notifyVolumeMount" -}}
{{- if include "conductor.notifyKeys" . }}
- name: notify-secrets
  mountPath: /etc/conductor-notify
  readOnly: true
{{- end }}
{{- end }}
