/**
 * The Helm chart (deploy/helm/clmae-serve), rendered and validated offline, no cluster: `helm template`
 * (the pinned helm of scripts/install-deploy-tools.sh) with the default values and with
 * values-multi-replica.yaml, then every object through two validators of Kubernetes' schemas:
 * k8s-validate (deploy/k8s-validate: strict decoding into k8s.io/api's Go types, as the API server
 * does with strict field validation: unknown fields and wrong types fail) and kubernetes-models (the
 * OpenAPI schemas: required fields, types, formats). Also: a misspelt field fails, and more than one
 * replica without a database URL is refused at render time.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = new URL('../../', import.meta.url).pathname
const HELM = join(ROOT, '.cache', 'bin', 'helm')
const K8S_VALIDATE = join(ROOT, '.cache', 'bin', 'k8s-validate')
const CHART = join(ROOT, 'deploy', 'helm', 'clmae-serve')
const MULTI_REPLICA = join(CHART, 'values-multi-replica.yaml')
// the Kubernetes version of k8s-validate's k8s.io/api (v0.36) and of helm's defaults
const KUBE_VERSION = '1.36.0'

type K8sObject = Record<string, any> & { apiVersion: string, kind: string, metadata: { name: string } }

function ensureTools (): void {
  if (existsSync(HELM) && existsSync(K8S_VALIDATE)) return
  // npm test builds them first (scripts/test-all.sh); a test run on its own builds them here
  const built = spawnSync('bash', [join(ROOT, 'scripts', 'install-deploy-tools.sh')], { cwd: ROOT, encoding: 'utf8', timeout: 1_500_000 })
  assert.equal(built.status, 0, `scripts/install-deploy-tools.sh failed:\n${built.stdout}\n${built.stderr}`)
}

/** helm template with extra arguments: the exit status, helm's stderr and the YAML stream. */
function render (...args: string[]): { status: number | null, stderr: string, yaml: string } {
  ensureTools()
  const out = spawnSync(HELM, ['template', 'clmae', CHART, '--namespace', 'clmae', '--kube-version', KUBE_VERSION, ...args], { encoding: 'utf8' })
  return { status: out.status, stderr: out.stderr, yaml: out.stdout }
}

/** k8s-validate over a YAML (or JSON) stream: its report and the objects as parsed JSON. */
function strictDecode (stream: string): { ok: boolean, report: string, objects: K8sObject[] } {
  const out = spawnSync(K8S_VALIDATE, ['-json'], { input: stream, encoding: 'utf8' })
  const objects = out.stdout.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as K8sObject)
  return { ok: out.status === 0, report: out.stderr, objects }
}

/** kubernetes-models' schema check of one object; the error message, or null when valid. */
async function schemaCheck (object: K8sObject): Promise<string | null> {
  const models = await import(`kubernetes-models/${object.apiVersion}`) as Record<string, new (data: unknown) => { validate: () => void }>
  const Model = models[object.kind]
  if (Model === undefined) return `kubernetes-models has no ${object.apiVersion} ${object.kind}`
  try {
    new Model(object).validate()
    return null
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

/** Renders, checks that every object passes both validators, returns the objects by kind. */
async function renderValid (...args: string[]): Promise<Map<string, K8sObject>> {
  const rendered = render(...args)
  assert.equal(rendered.status, 0, rendered.stderr)
  const decoded = strictDecode(rendered.yaml)
  assert.ok(decoded.ok, decoded.report)
  const byKind = new Map<string, K8sObject>()
  for (const object of decoded.objects) {
    assert.equal(await schemaCheck(object), null, `${object.kind}/${object.metadata.name}`)
    assert.ok(!byKind.has(object.kind), `one ${object.kind}`)
    byKind.set(object.kind, object)
  }
  return byKind
}

function container (deployment: K8sObject): Record<string, any> {
  return deployment.spec.template.spec.containers[0]
}

function env (deployment: K8sObject): Map<string, Record<string, any>> {
  return new Map((container(deployment).env as Array<Record<string, any>>).map((e) => [e.name as string, e]))
}

test('helm lint passes', () => {
  ensureTools()
  const lint = spawnSync(HELM, ['lint', CHART, '--kube-version', KUBE_VERSION], { encoding: 'utf8' })
  assert.equal(lint.status, 0, lint.stdout + lint.stderr)
  const multi = spawnSync(HELM, ['lint', CHART, '--kube-version', KUBE_VERSION, '-f', MULTI_REPLICA], { encoding: 'utf8' })
  assert.equal(multi.status, 0, multi.stdout + multi.stderr)
})

test('default values: one replica, SQLite on a volume; every object valid', async () => {
  const objects = await renderValid()
  assert.deepEqual([...objects.keys()].sort(), ['Deployment', 'PersistentVolumeClaim', 'PodDisruptionBudget', 'Service', 'ServiceAccount'])
  const deployment = objects.get('Deployment') as K8sObject
  assert.equal(deployment.spec.replicas, 1)
  assert.equal(deployment.spec.strategy.type, 'Recreate') // one SQLite writer, a ReadWriteOnce volume
  const c = container(deployment)
  assert.equal(c.startupProbe.httpGet.path, '/readyz')
  assert.equal(c.readinessProbe.httpGet.path, '/readyz')
  assert.equal(c.livenessProbe.httpGet.path, '/livez')
  assert.equal(c.securityContext.readOnlyRootFilesystem, true)
  assert.equal(deployment.spec.template.spec.securityContext.runAsNonRoot, true)
  assert.ok(c.resources.requests.memory !== undefined && c.resources.limits.memory !== undefined)
  const volumes = new Map((deployment.spec.template.spec.volumes as Array<Record<string, any>>).map((v) => [v.name as string, v]))
  assert.equal(volumes.get('data')?.persistentVolumeClaim.claimName, (objects.get('PersistentVolumeClaim') as K8sObject).metadata.name)
  assert.ok(volumes.get('tmp')?.emptyDir !== undefined)
  assert.deepEqual((c.volumeMounts as Array<Record<string, any>>).map((m) => m.mountPath).sort(), ['/app/data', '/tmp'])
  const vars = env(deployment)
  assert.equal(vars.get('CLMAE_MODELS_DIR')?.value, '/app/models') // the bundles inside the image
  assert.equal(vars.has('CLMAE_DATABASE_URL'), false)
  assert.equal(vars.has('CLMAE_API_KEYS'), false)
  // the Service and the PodDisruptionBudget select the Deployment's pods
  const labels = deployment.spec.template.metadata.labels
  assert.deepEqual((objects.get('Service') as K8sObject).spec.selector, deployment.spec.selector.matchLabels)
  assert.deepEqual((objects.get('PodDisruptionBudget') as K8sObject).spec.selector.matchLabels, deployment.spec.selector.matchLabels)
  for (const [key, value] of Object.entries(deployment.spec.selector.matchLabels)) assert.equal(labels[key], value)
})

test('values-multi-replica.yaml: HPA on CPU and in-flight requests, database URL from a Secret; every object valid', async () => {
  const objects = await renderValid('-f', MULTI_REPLICA)
  assert.deepEqual([...objects.keys()].sort(), ['Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service', 'ServiceAccount'])
  const deployment = objects.get('Deployment') as K8sObject
  assert.equal(deployment.spec.replicas, undefined) // the HPA owns the count
  assert.equal(deployment.spec.strategy.type, 'RollingUpdate')
  const vars = env(deployment)
  assert.deepEqual(vars.get('CLMAE_DATABASE_URL')?.valueFrom.secretKeyRef, { name: 'clmae-database', key: 'database-url' })
  assert.deepEqual(vars.get('CLMAE_API_KEYS')?.valueFrom.secretKeyRef, { name: 'clmae-api-keys', key: 'api-keys' })
  const data = (deployment.spec.template.spec.volumes as Array<Record<string, any>>).find((v) => v.name === 'data')
  assert.ok(data?.emptyDir !== undefined, 'no PVC: /app/data is an emptyDir')
  const hpa = objects.get('HorizontalPodAutoscaler') as K8sObject
  assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name)
  assert.deepEqual(hpa.spec.metrics.map((m: Record<string, any>) => m.type === 'Resource' ? m.resource.name : m.pods.metric.name), ['cpu', 'clmae_inflight_requests'])
})

test('keys and database URL as values: a chart Secret; bundles from a read-only volume', async () => {
  const objects = await renderValid('--set', 'database.url=postgres://clmae:pw@db:5432/clmae', '--set', 'apiKeys.keys={k1,k2}', '--set', 'replicaCount=2',
    '--set', 'models.volume.persistentVolumeClaim.claimName=bundles', '--set', 'models.volume.persistentVolumeClaim.readOnly=true')
  const secret = objects.get('Secret') as K8sObject
  assert.deepEqual(secret.stringData, { 'api-keys': 'k1,k2', 'database-url': 'postgres://clmae:pw@db:5432/clmae' })
  const deployment = objects.get('Deployment') as K8sObject
  assert.equal(deployment.spec.replicas, 2)
  const vars = env(deployment)
  assert.deepEqual(vars.get('CLMAE_DATABASE_URL')?.valueFrom.secretKeyRef, { name: secret.metadata.name, key: 'database-url' })
  assert.equal(vars.get('CLMAE_MODELS_DIR')?.value, '/models')
  const mount = (container(deployment).volumeMounts as Array<Record<string, any>>).find((m) => m.name === 'models')
  assert.deepEqual(mount, { name: 'models', mountPath: '/models', readOnly: true })
  assert.equal(objects.has('PersistentVolumeClaim'), false)
})

test('a misspelt field fails the validation', async () => {
  const rendered = render()
  assert.equal(rendered.status, 0, rendered.stderr)
  const { objects } = strictDecode(rendered.yaml)
  const deployment = structuredClone(objects.find((o) => o.kind === 'Deployment') as K8sObject)
  const c = container(deployment)
  c.readinesProbe = c.readinessProbe
  delete c.readinessProbe
  const misspelt = strictDecode(JSON.stringify(deployment))
  assert.equal(misspelt.ok, false)
  assert.match(misspelt.report, /unknown field "spec\.template\.spec\.containers\[0\]\.readinesProbe"/)
  // a wrong type fails both validators
  const typo = structuredClone(deployment)
  typo.spec.replicas = 'one'
  assert.equal(strictDecode(JSON.stringify(typo)).ok, false)
  assert.match(await schemaCheck(typo) ?? '', /replicas/)
  // a misspelling in a value that reaches the output: extraEnv entries are copied as they are
  const fromValues = render('--set-json', 'extraEnv=[{"name":"CLMAE_X","valeu":"1"}]')
  assert.equal(fromValues.status, 0, fromValues.stderr)
  const decoded = strictDecode(fromValues.yaml)
  assert.equal(decoded.ok, false)
  assert.match(decoded.report, /INVALID Deployment\/clmae-clmae-serve: .*unknown field "spec\.template\.spec\.containers\[0\]\.env\[\d+\]\.valeu"/)
})

test('more than one replica without a database URL is refused', () => {
  const two = render('--set', 'replicaCount=2')
  assert.notEqual(two.status, 0)
  assert.match(two.stderr, /replicaCount is 2 but no database is set/)
  const scaling = render('--set', 'autoscaling.enabled=true', '--set', 'autoscaling.maxReplicas=4')
  assert.notEqual(scaling.status, 0)
  assert.match(scaling.stderr, /autoscaling\.maxReplicas > 1 needs a shared store/)
  // the multi-replica file without its database Secret: refused too
  const withoutDatabase = render('-f', MULTI_REPLICA, '--set', 'database.existingSecret=')
  assert.notEqual(withoutDatabase.status, 0)
  assert.equal(render('--set', 'replicaCount=2', '--set', 'database.existingSecret=db').status, 0)
})

test('review: minReplicas above maxReplicas, and secrets in plain config or extraEnv, are refused', () => {
  const inverted = render('--set', 'autoscaling.enabled=true', '--set', 'autoscaling.maxReplicas=1')
  assert.notEqual(inverted.status, 0)
  assert.match(inverted.stderr, /minReplicas \(\d+\) is above autoscaling\.maxReplicas \(1\)/)
  const inConfig = render('--set', 'config.CLMAE_DATABASE_URL=postgres://u:secretpw@db/x')
  assert.notEqual(inConfig.status, 0)
  assert.match(inConfig.stderr, /CLMAE_DATABASE_URL is a secret/)
  assert.doesNotMatch(inConfig.yaml, /secretpw/)
  const inExtraEnv = render('--set', 'extraEnv[0].name=CLMAE_API_KEYS', '--set', 'extraEnv[0].value=k1')
  assert.notEqual(inExtraEnv.status, 0)
  assert.match(inExtraEnv.stderr, /CLMAE_API_KEYS is a secret/)
})
