{{/*
The chart name, or nameOverride.
*/}}
{{- define "picket.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else the release name when it already holds
the chart name, else "<release>-<chart>". Cut to 46 characters so that "<prefix>-webhook-tls"
(the longest suffix) leaves room in a 63-character name.
*/}}
{{- define "picket.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 46 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "picket.webhookName" -}}{{ include "picket.fullname" . }}-webhook{{- end }}
{{- define "picket.operatorName" -}}{{ include "picket.fullname" . }}-operator{{- end }}
{{- define "picket.webhookSecret" -}}{{ include "picket.fullname" . }}-webhook-tls{{- end }}
{{- define "picket.configName" -}}{{ include "picket.fullname" . }}-config{{- end }}

{{/*
The MutatingWebhookConfiguration is cluster-scoped: the release namespace is in its name so that
two releases of the same name in two namespaces do not fight over one object.
*/}}
{{- define "picket.webhookConfigurationName" -}}
{{- printf "%s-%s" (include "picket.webhookName" .) .Release.Namespace | trunc 253 }}
{{- end }}

{{/*
Cluster-scoped RBAC names carry the namespace too, for the same reason; call with
(dict "root" $ "component" "webhook").
*/}}
{{- define "picket.clusterRoleName" -}}
{{- printf "%s-%s-%s" (include "picket.fullname" .root) .component .root.Release.Namespace | trunc 253 }}
{{- end }}

{{- define "picket.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The address every sidecar polls for xDS: injector.xdsHost, else the operator Service's cluster DNS
name.
*/}}
{{- define "picket.xdsHost" -}}
{{- if .Values.injector.xdsHost }}
{{- .Values.injector.xdsHost }}
{{- else }}
{{- printf "%s.%s.svc.%s" (include "picket.operatorName" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}
{{- end }}

{{/*
Labels on every object; a component's objects add picket.selectorLabels to these.
*/}}
{{- define "picket.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: picket
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels of an object that belongs to no one component.
*/}}
{{- define "picket.labels" -}}
{{ include "picket.baseLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of one component; call with (dict "root" $ "component" "webhook").
*/}}
{{- define "picket.selectorLabels" -}}
app.kubernetes.io/name: {{ include "picket.name" .root }}-{{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The container security context of picket-webhook and picket-operator.
*/}}
{{- define "picket.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The pod security context of picket-webhook and picket-operator.
*/}}
{{- define "picket.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Spreads a component's replicas over nodes when it can; call with (dict "root" $ "component" "webhook").
*/}}
{{- define "picket.affinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "picket.selectorLabels" . | nindent 12 }}
{{- end }}
