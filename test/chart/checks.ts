/**
 * Pure checks on rendered Kubernetes objects. Each returns a list of problems (empty = fine) or a
 * plain value, so the tests can assert on them and also prove that they catch bad input.
 */

import { BACKUP_JOB_PERMISSIONS, LEADER_ELECTION_PERMISSIONS, OPERATOR_PERMISSIONS, WEBHOOK_CLUSTER_PERMISSIONS, WEBHOOK_NAMESPACE_PERMISSIONS, grantsOf as permissionGrants } from '../../src/api/permissions.js';

export type K8sObject = Record<string, any>;

export const STANDARD_LABELS = [
  'app.kubernetes.io/name',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
  'app.kubernetes.io/managed-by',
  'helm.sh/chart',
] as const;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function describeObject(obj: K8sObject): string {
  const ns = obj?.metadata?.namespace ? `${obj.metadata.namespace}/` : '';
  return `${obj?.kind ?? '<no kind>'} ${ns}${obj?.metadata?.name ?? '<no name>'}`;
}

/** apiVersion, kind, a DNS-subdomain metadata.name, and valid standard labels. */
export function basicProblems(obj: K8sObject): string[] {
  const problems: string[] = [];
  const what = describeObject(obj);
  if (typeof obj.apiVersion !== 'string' || obj.apiVersion === '') problems.push(`${what}: no apiVersion`);
  if (typeof obj.kind !== 'string' || obj.kind === '') problems.push(`${what}: no kind`);
  const name = obj.metadata?.name;
  if (typeof name !== 'string' || name === '') {
    problems.push(`${what}: no metadata.name`);
  } else if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    problems.push(`${what}: metadata.name ${JSON.stringify(name)} is not a DNS subdomain`);
  }
  // CRDs come from a generator and carry their own labelling.
  if (obj.kind === 'CustomResourceDefinition') return problems;
  const labels: Record<string, unknown> = obj.metadata?.labels ?? {};
  for (const key of STANDARD_LABELS) {
    if (typeof labels[key] !== 'string' || labels[key] === '') problems.push(`${what}: missing label ${key}`);
  }
  for (const [key, value] of Object.entries(labels)) {
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      problems.push(`${what}: label ${key}=${JSON.stringify(value)} is not a valid label value`);
    }
  }
  return problems;
}

const RBAC_KINDS = new Set(['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);

export function isRbac(obj: K8sObject): boolean {
  return obj.apiVersion === 'rbac.authorization.k8s.io/v1' && RBAC_KINDS.has(obj.kind);
}

/** JSON paths of every string containing `*` anywhere inside an object. */
export function wildcardPaths(value: unknown, at = '$'): string[] {
  if (typeof value === 'string') return value.includes('*') ? [at] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => wildcardPaths(v, `${at}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => [
      ...(k.includes('*') ? [`${at}.${k} (key)`] : []),
      ...wildcardPaths(v, `${at}.${k}`),
    ]);
  }
  return [];
}

/** RBAC objects must not use `*` anywhere (verbs, resources, apiGroups, names, URLs). */
export function rbacWildcardProblems(obj: K8sObject): string[] {
  if (!isRbac(obj)) return [];
  return wildcardPaths(obj).map((p) => `${describeObject(obj)}: wildcard at ${p}`);
}

/** One permission: "group/resource:verb" (core group as ""). */
export type Grant = string;

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export function grantsOf(rules: PolicyRule[] | undefined): Set<Grant> {
  const out = new Set<Grant>();
  for (const r of rules ?? []) {
    for (const g of r.apiGroups ?? []) {
      for (const res of r.resources ?? []) {
        for (const v of r.verbs ?? []) out.add(`${g}/${res}:${v}`);
      }
    }
  }
  return out;
}

export function grantsFrom(table: Record<string, Record<string, string[]>>): Set<Grant> {
  const out = new Set<Grant>();
  for (const [group, resources] of Object.entries(table)) {
    for (const [res, verbs] of Object.entries(resources)) for (const v of verbs) out.add(`${group}/${res}:${v}`);
  }
  return out;
}

export function missingGrants(held: Set<Grant>, wanted: Set<Grant>): Grant[] {
  return [...wanted].filter((g) => !held.has(g)).sort();
}

export function extraGrants(held: Set<Grant>, wanted: Set<Grant>): Grant[] {
  return [...held].filter((g) => !wanted.has(g)).sort();
}

/** Exactly what the operator uses on the namespaces it watches (src/api/permissions.ts, checked against the code there). */
export const OPERATOR_GRANTS: Set<Grant> = permissionGrants(OPERATOR_PERMISSIONS);

/** What the operator grants backup Job pods (the cluster's ServiceAccount); it may only grant what it holds. */
export const INSTANCE_GRANTS: Set<Grant> = permissionGrants(BACKUP_JOB_PERMISSIONS);

/** The Role that lets a namespaced operator read the default backup store's Secret (release namespace). */
export const BACKUP_STORE_GRANTS: Set<Grant> = grantsFrom({ '': { secrets: ['get'] } });

/** The leader-election Role in the release namespace. */
export const LEADER_ELECTION_GRANTS: Set<Grant> = permissionGrants(LEADER_ELECTION_PERMISSIONS);

export function podSpecOf(obj: K8sObject): K8sObject | undefined {
  switch (obj.kind) {
    case 'Pod':
      return obj.spec;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return obj.spec?.template?.spec;
    case 'CronJob':
      return obj.spec?.jobTemplate?.spec?.template?.spec;
    default:
      return undefined;
  }
}

/**
 * Problems against the "restricted" Pod Security Standard (plus our stricter choices:
 * readOnlyRootFilesystem and a fixed non-root UID).
 */
export function restrictedProblems(podSpec: K8sObject, what = 'pod'): string[] {
  const p: string[] = [];
  const psc = podSpec.securityContext ?? {};
  if (podSpec.hostNetwork === true || podSpec.hostPID === true || podSpec.hostIPC === true) {
    p.push(`${what}: uses host namespaces`);
  }
  for (const v of podSpec.volumes ?? []) {
    if (v.hostPath !== undefined) p.push(`${what}: hostPath volume ${v.name}`);
  }
  const containers: K8sObject[] = [...(podSpec.initContainers ?? []), ...(podSpec.containers ?? [])];
  if (containers.length === 0) p.push(`${what}: no containers`);
  for (const c of containers) {
    const sc = c.securityContext ?? {};
    const cw = `${what} container ${c.name}`;
    for (const problem of [...identityProblems(sc, psc), ...privilegeProblems(c, sc)]) p.push(`${cw}: ${problem}`);
  }
  return p;
}

/** Who a container runs as: the container's securityContext over the pod's. */
function identityProblems(sc: K8sObject, psc: K8sObject): string[] {
  const p: string[] = [];
  const runAsNonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
  if (runAsNonRoot !== true) p.push('runAsNonRoot is not true');
  const uid = sc.runAsUser ?? psc.runAsUser;
  if (uid !== 65532) p.push(`runAsUser is ${uid}, want 65532`);
  const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
  if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') p.push(`seccompProfile is ${seccomp}`);
  return p;
}

/** What a container may do: privileges, capabilities, root filesystem, host ports. */
function privilegeProblems(c: K8sObject, sc: K8sObject): string[] {
  const p: string[] = [];
  if (sc.allowPrivilegeEscalation !== false) p.push('allowPrivilegeEscalation is not false');
  if (sc.privileged === true) p.push('privileged');
  const drop: unknown[] = sc.capabilities?.drop ?? [];
  if (!drop.includes('ALL')) p.push('capabilities do not drop ALL');
  const add: unknown[] = sc.capabilities?.add ?? [];
  if (add.some((cap) => cap !== 'NET_BIND_SERVICE')) p.push(`adds capabilities ${add.join(',')}`);
  if (sc.readOnlyRootFilesystem !== true) p.push('readOnlyRootFilesystem is not true');
  for (const port of c.ports ?? []) {
    if (port.hostPort !== undefined && port.hostPort !== 0) p.push(`hostPort ${port.hostPort}`);
  }
  return p;
}

export type EnvValue = string | { fieldRef: string } | { other: unknown };

/** A container's env as a map; fieldRefs become {fieldRef: path}. Duplicate names are a problem. */
export function envOf(container: K8sObject): Map<string, EnvValue> {
  const out = new Map<string, EnvValue>();
  for (const e of container.env ?? []) {
    if (out.has(e.name)) throw new Error(`duplicate env var ${e.name}`);
    if (typeof e.value === 'string') out.set(e.name, e.value);
    else if (e.valueFrom?.fieldRef?.fieldPath !== undefined) out.set(e.name, { fieldRef: e.valueFrom.fieldRef.fieldPath });
    else if (e.value === undefined && e.valueFrom === undefined) out.set(e.name, '');
    else out.set(e.name, { other: e.value ?? e.valueFrom });
  }
  return out;
}

/** Differences between a container's env and what the contract expects (only the listed names). */
export function envProblems(container: K8sObject, expected: Record<string, EnvValue>): string[] {
  const env = envOf(container);
  const p: string[] = [];
  for (const [name, want] of Object.entries(expected)) {
    if (!env.has(name)) {
      p.push(`env ${name} missing`);
      continue;
    }
    const got = env.get(name);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      p.push(`env ${name} = ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
  }
  return p;
}

/** Every env var the operator contract defines. */
export const CONTRACT_ENV = [
  'PGPILOT_NAMESPACE',
  'PGPILOT_WATCH_NAMESPACES',
  'PGPILOT_LEADER_ELECT',
  'PGPILOT_LEASE_NAME',
  'PGPILOT_HTTP_PORT',
  'PGPILOT_HTTP_HOST',
  'PGPILOT_LOG_LEVEL',
  'PGPILOT_CONCURRENCY',
  'PGPILOT_RESYNC_SECONDS',
  'PGPILOT_INSTANCE_IMAGE_REPOSITORY',
  'PGPILOT_OPERATOR_IMAGE',
] as const;

/** Env vars of the operator's webhooks, set when webhook.enabled (the default). */
export const WEBHOOK_ENV = ['PGPILOT_WEBHOOK_PORT', 'PGPILOT_WEBHOOK_SERVICE', 'PGPILOT_WEBHOOK_CONFIGURATION', 'PGPILOT_WEBHOOK_CA_SECRET'] as const;

/**
 * The objects of charts/pgpilot/templates/webhook.yaml (its Service, ValidatingWebhookConfiguration
 * and RBAC, all named <fullname>-webhook): checked in their own block of chart.test.ts.
 */
export function isWebhookObject(o: K8sObject): boolean {
  return o.kind === 'ValidatingWebhookConfiguration' || (typeof o.metadata?.name === 'string' && o.metadata.name.endsWith('-webhook'));
}

/** What the webhook's ClusterRole grants: the PostgreSQLCluster CRD and the webhook configuration, by name. */
export const WEBHOOK_CLUSTER_GRANTS: Set<Grant> = permissionGrants(WEBHOOK_CLUSTER_PERMISSIONS);
/** What the webhook's Role grants in the release namespace: its CA Secret. */
export const WEBHOOK_NAMESPACE_GRANTS: Set<Grant> = permissionGrants(WEBHOOK_NAMESPACE_PERMISSIONS);

/** Env vars the chart sets only when their value is: the operator-wide default backup store (JSON). */
export const OPTIONAL_ENV = ['PGPILOT_DEFAULT_BACKUP_STORE', 'PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACES', 'PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACE_CREDENTIALS', ...WEBHOOK_ENV] as const;

/** Does a label selector (matchLabels) select these labels? */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (selector === undefined || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

export function byKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function one(objects: K8sObject[], kind: string): K8sObject {
  const found = byKind(objects, kind);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind}, found ${found.length}`);
  return found[0]!;
}
