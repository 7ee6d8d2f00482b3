// What pgpilot's identities may do through the Kubernetes API, one row per resource with the reason.
// The single declaration the chart's RBAC (charts/pgpilot/templates, rendered by helm), the OLM bundle
// and the Role of backup Jobs (src/builders/rbac.ts) are checked against; permissions.test.ts finds
// every API call in the code reachable from each entrypoint and fails when one is not granted here,
// or when a verb granted here is one the code never uses. docs/security.md shows these tables.
import { API_GROUP, BACKUP_PLURAL, CLUSTER_PLURAL } from './constants.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface Permission {
  /** API group ('' for the core group). */
  group: string;
  /** Plural resource name, with a subresource after a slash. */
  resource: string;
  verbs: readonly Verb[];
  /** What in the code needs it. */
  why: string;
}

// Informers list and watch every kind the operator owns (labelled managed-by=pgpilot); server-side
// apply patches, and creates what does not exist yet.
const OWNED = ['list', 'watch', 'create', 'patch'] as const;

/**
 * The operator in every namespace it watches: a ClusterRole, or with the Helm value watchNamespaces
 * one Role per listed namespace. Objects the cluster owns and no reconciler deletes go with the
 * cluster through garbage collection (the garbage collector's own permissions). Kubernetes lets the
 * operator grant only what it holds (RBAC escalation prevention), so these also cover
 * BACKUP_JOB_PERMISSIONS; a verb held only for that says so in its reason.
 */
export const OPERATOR_PERMISSIONS: readonly Permission[] = [
  { group: API_GROUP, resource: CLUSTER_PLURAL, verbs: ['list', 'watch', 'patch', 'get'], why: 'informer on clusters; patch adds and removes the backup finalizer (spec.backup.onClusterDeletion); get is granted to backup Jobs' },
  { group: API_GROUP, resource: `${CLUSTER_PLURAL}/status`, verbs: ['patch'], why: 'status (merge patch, only when it changed)' },
  { group: API_GROUP, resource: `${CLUSTER_PLURAL}/finalizers`, verbs: ['update'], why: 'owner references with blockOwnerDeletion to the cluster (OwnerReferencesPermissionEnforcement)' },
  { group: API_GROUP, resource: BACKUP_PLURAL, verbs: ['list', 'watch', 'create', 'get', 'delete'], why: 'informer on backups; the backup taken before a major upgrade; get and delete are granted to backup Jobs' },
  { group: API_GROUP, resource: `${BACKUP_PLURAL}/status`, verbs: ['patch'], why: 'on-demand backups: the Job\'s progress and failures' },
  { group: API_GROUP, resource: `${BACKUP_PLURAL}/finalizers`, verbs: ['update'], why: 'an on-demand backup owns its Job with blockOwnerDeletion' },
  { group: 'apps', resource: 'statefulsets', verbs: [...OWNED, 'delete'], why: 'one StatefulSet per instance; delete removes an instance' },
  { group: '', resource: 'pods', verbs: ['list', 'watch', 'patch'], why: 'informer (metadata and status only); patch sets the role labels the Services select' },
  { group: '', resource: 'persistentvolumeclaims', verbs: ['list', 'watch', 'patch', 'delete'], why: 'resize (storage, auto-grow); delete the claims of a removed instance' },
  { group: '', resource: 'services', verbs: OWNED, why: 'headless, rw, ro and r Services' },
  { group: '', resource: 'configmaps', verbs: OWNED, why: 'the cluster\'s configuration (postgresql.conf, pg_hba.conf)' },
  { group: '', resource: 'secrets', verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'], why: 'generated credentials are created once, never changed; patch (server-side apply) writes the cluster\'s CA and certificate Secrets, which renewal rewrites (docs/tls.md); get reads the agent token, the cluster CA (the operator issues itself the agents\' client certificate from it, in memory), the credentials copied for the default backup store and, when a certificate is due, the certificate Secrets; delete removes a copy from a namespace no longer allowed the default store (or replaces it when its source changes); the informer keeps no data' },
  { group: '', resource: 'serviceaccounts', verbs: OWNED, why: 'the ServiceAccount of a cluster\'s pods' },
  { group: 'rbac.authorization.k8s.io', resource: 'roles', verbs: OWNED, why: 'the Role of backup Jobs (src/builders/rbac.ts): the operator holds everything it grants' },
  { group: 'rbac.authorization.k8s.io', resource: 'rolebindings', verbs: OWNED, why: 'binds that Role to the cluster\'s ServiceAccount' },
  { group: 'policy', resource: 'poddisruptionbudgets', verbs: [...OWNED, 'delete'], why: 'the PodDisruptionBudget (deleted when it no longer applies)' },
  { group: 'batch', resource: 'cronjobs', verbs: [...OWNED, 'delete'], why: 'scheduled backups (deleted when backups are turned off)' },
  { group: 'batch', resource: 'jobs', verbs: ['list', 'watch', 'create', 'delete'], why: 'on-demand backup, purge and major-upgrade Jobs (created once; a finished upgrade Job is deleted)' },
  { group: 'autoscaling', resource: 'horizontalpodautoscalers', verbs: [...OWNED, 'delete'], why: 'the HPA of spec.autoscaling' },
  { group: 'networking.k8s.io', resource: 'networkpolicies', verbs: [...OWNED, 'delete'], why: 'the NetworkPolicy of spec.networkPolicy (deleted when it is turned off)' },
  { group: 'monitoring.coreos.com', resource: 'podmonitors', verbs: [...OWNED, 'delete'], why: 'a PodMonitor per cluster while the Prometheus Operator\'s CRDs exist' },
  { group: 'coordination.k8s.io', resource: 'leases', verbs: ['get', 'create', 'update'], why: 'each cluster\'s <name>-primary Lease serialises promotions (compare-and-swap)' },
  { group: '', resource: 'events', verbs: ['create'], why: 'Events on clusters and backups' },
];

/** The operator in its own namespace: the leader-election Lease (a Role there, whatever watchNamespaces says). */
export const LEADER_ELECTION_PERMISSIONS: readonly Permission[] = [
  { group: 'coordination.k8s.io', resource: 'leases', verbs: ['get', 'create', 'update'], why: 'the leader Lease: read, take, renew, release' },
];

/**
 * The operator's webhooks (chart value webhook.enabled; templates/webhook.yaml): a ClusterRole for
 * the cluster-scoped rows (each narrowed to our object by name) and a Role in the operator's
 * namespace for its CA Secret (get/update narrowed to that Secret; create cannot be). Not granted
 * by the OLM bundle: there the operator serves OLM's certificate (--webhook-cert-dir) and makes none
 * of these calls (test/bundle checks the CSV holds no such rule).
 */
export const WEBHOOK_CLUSTER_PERMISSIONS: readonly Permission[] = [
  { group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions', verbs: ['get', 'patch'], why: 'the conversion webhook\'s address and CA bundle in the PostgreSQLCluster CRD' },
  { group: 'admissionregistration.k8s.io', resource: 'validatingwebhookconfigurations', verbs: ['get', 'update'], why: 'the validating webhook\'s address and CA bundle' },
];
export const WEBHOOK_NAMESPACE_PERMISSIONS: readonly Permission[] = [
  { group: '', resource: 'secrets', verbs: ['create', 'get', 'update'], why: 'the webhook CA, kept in a Secret so replicas and restarts agree (renewed in place)' },
];

/**
 * Backup and purge Job pods, as the cluster's ServiceAccount (instance pods share it but mount no
 * token: the instance agent does not call the API). Bound in the cluster's namespace by the Role of
 * src/builders/rbac.ts, which narrows the cluster to its own name.
 */
export const BACKUP_JOB_PERMISSIONS: readonly Permission[] = [
  { group: API_GROUP, resource: CLUSTER_PLURAL, verbs: ['get'], why: 'the cluster\'s spec and status (its own name only)' },
  { group: '', resource: 'pods', verbs: ['list'], why: 'the instance to back up from; the Job\'s own pods (attempts)' },
  { group: API_GROUP, resource: BACKUP_PLURAL, verbs: ['get', 'list', 'create', 'delete'], why: 'a scheduled run creates its PostgreSQLBackup; retention and purge delete expired ones' },
  { group: API_GROUP, resource: `${BACKUP_PLURAL}/status`, verbs: ['patch'], why: 'progress and the result of the backup' },
  { group: '', resource: 'events', verbs: ['create'], why: 'Events on the cluster and the backup' },
];

/** "group/resource:verb" for each verb of each row (the unit RBAC rules are compared in). */
export function grantsOf(permissions: readonly Permission[]): Set<string> {
  return new Set(permissions.flatMap((p) => p.verbs.map((v) => `${p.group}/${p.resource}:${v}`)));
}
