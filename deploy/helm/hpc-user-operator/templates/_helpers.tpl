{{- define "hpc-user-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hpc-user-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hpc-user-operator.labels" -}}
{{ include "hpc-user-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The rules of one of deploy/rbac/'s roles, copied into files/rbac/. */}}
{{- define "hpc-user-operator.rulesOf" -}}
{{- (.context.Files.Get (printf "files/rbac/%s" .file) | fromYaml).rules | toYaml -}}
{{- end -}}

{{/* The operator's ServiceAccount as the apiserver names the user. */}}
{{- define "hpc-user-operator.serviceAccountUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "hpc-user-operator.fullname" .) -}}
{{- end -}}
