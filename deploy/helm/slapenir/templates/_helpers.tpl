{{/* The name every object of a release starts with. */}}
{{- define "slapenir.fullname" -}}
{{- printf "%s-slapenir" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "slapenir.labels" -}}
app.kubernetes.io/name: slapenir
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: ca, proxy or agent. */}}
{{- define "slapenir.selector" -}}
app.kubernetes.io/name: slapenir
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "slapenir.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* The CA's in-cluster URL. */}}
{{- define "slapenir.caURL" -}}
{{- printf "https://%s-ca:9000" (include "slapenir.fullname" .) -}}
{{- end -}}

{{/* A container's security context: non-root, read-only root, nothing kept. */}}
{{- define "slapenir.restricted" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
The init step that mints one identity's one-time token: it alone mounts the
provisioner's password (and the public root), writes the token into the
pod's token volume and exits. $args: the root context, the subject, and the
extra SANs.
*/}}
{{- define "slapenir.tokenInit" -}}
- name: mint-token
  image: {{ include "slapenir.image" .root.Values.images.proxy }}
  imagePullPolicy: {{ .root.Values.images.proxy.pullPolicy }}
  command: [slapenir, certs, token]
  args:
    - {{ .subject | quote }}
    - --ca-url={{ include "slapenir.caURL" .root }}
    - --provisioner={{ .root.Values.ca.provisioner }}
    - --password-file=/provisioner/password
    - --root=/ca-root/ca.crt
    - --out=/tokens/token
    {{- range .sans }}
    - --san={{ . }}
    {{- end }}
  {{- if .env }}
  env:
    {{- toYaml .env | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "slapenir.restricted" .root | nindent 4 }}
    runAsUser: 65532
  resources:
    requests: {cpu: 10m, memory: 32Mi}
    limits: {memory: 64Mi}
  volumeMounts:
    - {name: provisioner, mountPath: /provisioner, readOnly: true}
    - {name: ca-root-public, mountPath: /ca-root, readOnly: true}
    - {name: token, mountPath: /tokens}
{{- end -}}
