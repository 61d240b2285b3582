{{/*
Pod template of the migration Job. Hook mode reads the hook copies of the Secret and the
ServiceAccount (the release's own do not exist yet at pre-install).
*/}}
{{- define "opsml-server.migrationPodTemplate" -}}
{{- $hook := .Values.migrations.useHelmHooks }}
{{- $proxy := include "opsml-server.cloudSqlProxy" . }}
{{- $native := .Values.cloud.gcp.cloudSqlProxy.nativeSidecar }}
{{- $secretName := include "opsml-server.databaseSecretName" . }}
{{- if and $hook (not .Values.database.existingSecret) }}
{{- $secretName = include "opsml-server.migrationSecretName" . }}
{{- end }}
metadata:
  labels:
    {{- include "opsml-server.labels" . | nindent 4 }}
    app.kubernetes.io/component: migrate
    {{- include "opsml-server.identityPodLabels" . | nindent 4 }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "opsml-server.migrationServiceAccountName" . }}
  {{- include "opsml-server.podSecurity" . | nindent 2 }}
  {{- if and $proxy $native }}
  initContainers:
    {{- include "opsml-server.cloudSqlProxyContainer" (dict "ctx" . "forJob" true) | nindent 4 }}
  {{- end }}
  containers:
    - name: migrate
      image: {{ include "opsml-server.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      {{- if and $proxy (not $native) }}
      # A plain proxy container would keep the Job pod running forever: wait for the proxy,
      # migrate, then stop the proxy through its admin endpoint. Python, because the server
      # image has no curl.
      command:
        - python
        - -c
        - |
          import subprocess, sys, time, urllib.request
          for _ in range(60):
              try:
                  urllib.request.urlopen("http://127.0.0.1:9090/startup", timeout=2)
                  break
              except OSError:
                  time.sleep(2)
          rc = subprocess.call(["opsml-server", "migrate"])
          req = urllib.request.Request("http://127.0.0.1:9091/quitquitquit", method="POST")
          try:
              urllib.request.urlopen(req, timeout=5)
          except OSError as exc:
              print(f"could not stop the proxy: {exc}", file=sys.stderr)
          sys.exit(rc)
      {{- else }}
      command:
        - opsml-server
        - migrate
      {{- end }}
      env:
        {{- include "opsml-server.trackingUriEnv" (dict "ctx" . "secretName" $secretName) | nindent 8 }}
        {{- include "opsml-server.cloudEnv" . | nindent 8 }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml .Values.migrations.resources | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if include "opsml-server.gcpKeyMounted" . }}
        - name: gcp-key
          mountPath: {{ include "opsml-server.gcpKeyDir" . }}
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- if and $proxy (not $native) }}
    {{- include "opsml-server.cloudSqlProxyContainer" (dict "ctx" . "forJob" true) | nindent 4 }}
    {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    {{- include "opsml-server.gcpKeyVolume" . | nindent 4 }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "opsml-server.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: {{ .policy }}
{{- end }}
