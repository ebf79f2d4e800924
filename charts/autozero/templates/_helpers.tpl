{{- define "autozero.name" -}}autozero{{- end -}}
{{- define "autozero.labels" -}}
app.kubernetes.io/name: autozero
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* The namespaces the namespaced rules are confined to: rbac.namespaces, else watchNamespaces
when none is a glob, else none (the rules then apply cluster-wide). */}}
{{- define "autozero.tenantNamespaces" -}}
{{- $out := list -}}
{{- if .Values.rbac.namespaces -}}
{{- $out = .Values.rbac.namespaces -}}
{{- else -}}
{{- $literal := true -}}
{{- range .Values.watchNamespaces -}}
{{- if regexMatch "[*?\\[]" . -}}{{- $literal = false -}}{{- end -}}
{{- end -}}
{{- if $literal -}}{{- $out = .Values.watchNamespaces -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* What the operator does inside a tenant's namespace. */}}
{{- define "autozero.namespacedRules" -}}
- apiGroups: [""]
  resources: [secrets]        # only the keys a policy names, in the policy's namespace
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]   # list+watch: observed from a watch, not polled
  verbs: [list, watch, create, delete]
{{- range .Values.rbac.scaleTargets }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources: {{ toJson .resources }}
  verbs: [get, patch]
{{- $workloads := list }}
{{- range .resources }}{{ $workloads = append $workloads (trimSuffix "/scale" .) }}{{ end }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources: {{ toJson $workloads }}   # list+watch only: their replica counts, from a watch
  verbs: [list, watch]
{{- end }}
{{- end -}}
