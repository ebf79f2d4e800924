{{- define "autozero.name" -}}autozero{{- end -}}
{{- define "autozero.labels" -}}
app.kubernetes.io/name: autozero
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
