{{/*
Names. Kubernetes names are limited to 63 characters (DNS labels).
*/}}
{{- define "opsml-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "opsml-server.fullname" -}}
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

{{- define "opsml-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels. Selector labels never carry the version: a Deployment selector is immutable.
*/}}
{{- define "opsml-server.labels" -}}
helm.sh/chart: {{ include "opsml-server.chart" . }}
{{ include "opsml-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: opsml
{{- end }}

{{- define "opsml-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "opsml-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "opsml-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "opsml-server.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Service account of the migration hook Job. A pre-install hook runs before the release's own
ServiceAccount exists, so hook mode gets its own hook-created account with the same identity
annotations. (Making the main account a hook would delete and recreate it on every upgrade,
which invalidates the bound tokens of running pods.)
*/}}
{{- define "opsml-server.migrationServiceAccountName" -}}
{{- if and .Values.migrations.useHelmHooks .Values.serviceAccount.create }}
{{- printf "%s-migrate" (include "opsml-server.fullname" . | trunc 55 | trimSuffix "-") }}
{{- else }}
{{- include "opsml-server.serviceAccountName" . }}
{{- end }}
{{- end }}

{{/*
Image reference: a digest pins the image and wins over the tag.
*/}}
{{- define "opsml-server.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "opsml-server.proxyImage" -}}
{{- $img := .Values.cloud.gcp.cloudSqlProxy.image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository $img.tag }}
{{- end }}
{{- end }}

{{/*
Secrets. The chart makes "<fullname>" only for quick-start values; existing Secrets win.
*/}}
{{- define "opsml-server.chartSecretName" -}}
{{- include "opsml-server.fullname" . }}
{{- end }}

{{- define "opsml-server.migrationSecretName" -}}
{{- printf "%s-migrate" (include "opsml-server.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "opsml-server.databaseSecretName" -}}
{{- default (include "opsml-server.chartSecretName" .) .Values.database.existingSecret }}
{{- end }}

{{- define "opsml-server.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}OPSML_TRACKING_URI{{ end }}
{{- end }}

{{- define "opsml-server.authSecretName" -}}
{{- default (include "opsml-server.chartSecretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "opsml-server.makesSecret" -}}
{{- if or (not .Values.database.existingSecret) (and (include "opsml-server.authNeedsSecret" .) (not .Values.auth.existingSecret)) }}true{{ end }}
{{- end }}

{{- define "opsml-server.authNeedsSecret" -}}
{{- if or .Values.auth.enabled (eq .Values.auth.appEnv "production") }}true{{ end }}
{{- end }}

{{/*
Cross-field checks the schema cannot phrase well; each names the value to set.
*/}}
{{- define "opsml-server.validate" -}}
{{- if and (not .Values.database.existingSecret) (not .Values.database.trackingUri) }}
{{- fail "set database.existingSecret (a Secret holding OPSML_TRACKING_URI) or, for a quick start, database.trackingUri" }}
{{- end }}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) (not (and .Values.auth.username .Values.auth.password)) }}
{{- fail "auth.enabled needs auth.existingSecret or both auth.username and auth.password" }}
{{- end }}
{{- if and (eq .Values.auth.appEnv "production") (not .Values.auth.existingSecret) (not .Values.auth.prodToken) }}
{{- fail "auth.appEnv=production needs auth.existingSecret (with the prodTokenKey key) or auth.prodToken" }}
{{- end }}
{{- $proxy := .Values.cloud.gcp.cloudSqlProxy }}
{{- if and (include "opsml-server.cloudSqlProxy" .) $proxy.nativeSidecar (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "cloud.gcp.cloudSqlProxy.nativeSidecar needs Kubernetes >= 1.29 (cluster is %s): set it to false" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- end }}

{{- define "opsml-server.cloudSqlProxy" -}}
{{- if and (eq .Values.cloud.preset "gcp") .Values.cloud.gcp.cloudSqlProxy.enabled }}true{{ end }}
{{- end }}

{{- define "opsml-server.gcpKeyMounted" -}}
{{- if and (eq .Values.cloud.preset "gcp") .Values.cloud.gcp.keySecret.name }}true{{ end }}
{{- end }}

{{- define "opsml-server.gcpKeyDir" -}}/var/run/secrets/opsml/gcp{{- end }}

{{/*
Workload identity: annotations on the ServiceAccount, labels on the pods.
*/}}
{{- define "opsml-server.serviceAccountAnnotations" -}}
{{- $a := dict }}
{{- if and (eq .Values.cloud.preset "gcp") .Values.cloud.gcp.serviceAccount }}
{{- $_ := set $a "iam.gke.io/gcp-service-account" .Values.cloud.gcp.serviceAccount }}
{{- else if and (eq .Values.cloud.preset "aws") .Values.cloud.aws.roleArn }}
{{- $_ := set $a "eks.amazonaws.com/role-arn" .Values.cloud.aws.roleArn }}
{{- else if eq .Values.cloud.preset "azure" }}
{{- if .Values.cloud.azure.clientId }}
{{- $_ := set $a "azure.workload.identity/client-id" .Values.cloud.azure.clientId }}
{{- end }}
{{- if .Values.cloud.azure.tenantId }}
{{- $_ := set $a "azure.workload.identity/tenant-id" .Values.cloud.azure.tenantId }}
{{- end }}
{{- end }}
{{- $all := merge $a .Values.serviceAccount.annotations }}
{{- if $all }}
{{- toYaml $all }}
{{- end }}
{{- end }}

{{- define "opsml-server.identityPodLabels" -}}
{{- if eq .Values.cloud.preset "azure" }}
azure.workload.identity/use: "true"
{{- end }}
{{- end }}

{{/*
Pod security defaults shared by every pod the chart makes.
*/}}
{{- define "opsml-server.podSecurity" -}}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Environment of the server container.
*/}}
{{- define "opsml-server.trackingUriEnv" -}}
- name: OPSML_TRACKING_URI
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ include "opsml-server.databaseSecretKey" .ctx }}
{{- end }}

{{- define "opsml-server.cloudEnv" -}}
{{- if include "opsml-server.gcpKeyMounted" . }}
- name: GOOGLE_APPLICATION_CREDENTIALS_SA
  value: {{ printf "%s/%s" (include "opsml-server.gcpKeyDir" .) .Values.cloud.gcp.keySecret.key | quote }}
{{- end }}
{{- if and (eq .Values.cloud.preset "aws") .Values.cloud.aws.region }}
- name: AWS_REGION
  value: {{ .Values.cloud.aws.region | quote }}
{{- end }}
{{- if eq .Values.cloud.preset "azure" }}
- name: AZURE_STORAGE_ACCOUNT_NAME
  value: {{ .Values.cloud.azure.storageAccountName | quote }}
{{- end }}
{{- end }}

{{- define "opsml-server.env" -}}
{{- include "opsml-server.trackingUriEnv" (dict "ctx" . "secretName" (include "opsml-server.databaseSecretName" .)) }}
- name: OPSML_STORAGE_URI
  value: {{ required "storage.uri (OPSML_STORAGE_URI) is required" .Values.storage.uri | quote }}
- name: OPSML_POOL_SIZE
  value: {{ .Values.database.poolSize | quote }}
- name: OPSML_MAX_OVERFLOW
  value: {{ .Values.database.maxOverflow | quote }}
- name: APP_ENV
  value: {{ .Values.auth.appEnv | quote }}
{{- if .Values.auth.enabled }}
- name: OPSML_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "opsml-server.authSecretName" . }}
      key: {{ ternary .Values.auth.usernameKey "OPSML_USERNAME" (ne .Values.auth.existingSecret "") }}
- name: OPSML_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "opsml-server.authSecretName" . }}
      key: {{ ternary .Values.auth.passwordKey "OPSML_PASSWORD" (ne .Values.auth.existingSecret "") }}
{{- end }}
{{- if eq .Values.auth.appEnv "production" }}
- name: OPSML_PROD_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "opsml-server.authSecretName" . }}
      key: {{ ternary .Values.auth.prodTokenKey "OPSML_PROD_TOKEN" (ne .Values.auth.existingSecret "") }}
{{- end }}
- name: PORT
  value: {{ .Values.server.port | quote }}
- name: WEB_CONCURRENCY
  value: {{ .Values.server.workers | quote }}
- name: GUNICORN_TIMEOUT
  value: {{ .Values.server.timeout | quote }}
- name: GUNICORN_GRACEFUL_TIMEOUT
  value: {{ .Values.server.gracefulTimeout | quote }}
{{- include "opsml-server.cloudEnv" . }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The production command from docs/CONTRACTS.md; login=True when auth is on.
*/}}
{{- define "opsml-server.command" -}}
- gunicorn
- -k
- uvicorn_worker.UvicornWorker
- --config=python:app.gunicorn_conf
- {{ printf "--bind=0.0.0.0:%v" .Values.server.port }}
- {{ printf "app.main:run_app(login=%s)" (ternary "True" "False" .Values.auth.enabled) | quote }}
{{- end }}

{{/*
Cloud SQL Auth Proxy container. Args: dict "ctx" $ "forJob" bool.
As a native sidecar it starts (and passes its startup probe) before the server and, in the
migration Job, is stopped by the kubelet once migrate exits. As a plain container in the Job it is
stopped through its admin /quitquitquit endpoint by the migrate wrapper.
*/}}
{{- define "opsml-server.cloudSqlProxyContainer" -}}
{{- $ctx := .ctx }}
{{- $p := $ctx.Values.cloud.gcp.cloudSqlProxy }}
- name: cloud-sql-proxy
  image: {{ include "opsml-server.proxyImage" $ctx }}
  imagePullPolicy: {{ $p.image.pullPolicy }}
  {{- if $p.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  args:
    - --structured-logs
    - --address=127.0.0.1
    - {{ printf "--port=%v" $p.port }}
    - --health-check
    - --http-address=0.0.0.0
    - --http-port=9090
    - --exit-zero-on-sigterm
    {{- if and .forJob (not $p.nativeSidecar) }}
    - --quitquitquit
    - --admin-port=9091
    {{- end }}
    {{- if $p.privateIp }}
    - --private-ip
    {{- end }}
    {{- if $p.autoIamAuthn }}
    - --auto-iam-authn
    {{- end }}
    {{- if include "opsml-server.gcpKeyMounted" $ctx }}
    - {{ printf "--credentials-file=%s/%s" (include "opsml-server.gcpKeyDir" $ctx) $ctx.Values.cloud.gcp.keySecret.key }}
    {{- end }}
    - {{ required "cloud.gcp.cloudSqlProxy.instanceConnectionName is required when the proxy is enabled" $p.instanceConnectionName | quote }}
  ports:
    - name: proxy-health
      containerPort: 9090
      protocol: TCP
  startupProbe:
    httpGet:
      path: /startup
      port: proxy-health
    periodSeconds: 2
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /liveness
      port: proxy-health
    periodSeconds: 10
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readiness
      port: proxy-health
    periodSeconds: 10
    failureThreshold: 3
  securityContext:
    {{- toYaml $ctx.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $p.resources | nindent 4 }}
  {{- if include "opsml-server.gcpKeyMounted" $ctx }}
  volumeMounts:
    - name: gcp-key
      mountPath: {{ include "opsml-server.gcpKeyDir" $ctx }}
      readOnly: true
  {{- end }}
{{- end }}

{{- define "opsml-server.gcpKeyVolume" -}}
{{- if include "opsml-server.gcpKeyMounted" . }}
- name: gcp-key
  secret:
    secretName: {{ .Values.cloud.gcp.keySecret.name }}
    defaultMode: 0440
    items:
      - key: {{ .Values.cloud.gcp.keySecret.key }}
        path: {{ .Values.cloud.gcp.keySecret.key }}
{{- end }}
{{- end }}

{{/*
checkov skip annotations, each with its reason, added only where the reason holds.
skip1: CKV_K8S_35 for pods that get secrets as env; skip2: CKV_K8S_43 when an image has no digest.
*/}}
{{- define "opsml-server.checkovSkips" -}}
checkov.io/skip1: CKV_K8S_35=The server reads its configuration only from environment variables (docs/CONTRACTS.md); secrets reach it through secretKeyRef, never as plain values.
{{- include "opsml-server.checkovSkipDigest" . }}
{{- end }}

{{- define "opsml-server.checkovSkipDigest" -}}
{{- if or (not .Values.image.digest) (and (include "opsml-server.cloudSqlProxy" .) (not .Values.cloud.gcp.cloudSqlProxy.image.digest)) }}
checkov.io/skip2: CKV_K8S_43=An image is pinned by tag because its digest value is empty (image.digest, cloud.gcp.cloudSqlProxy.image.digest); set it to pin by digest.
{{- end }}
{{- end }}
