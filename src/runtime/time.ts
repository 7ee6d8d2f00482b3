// Kubernetes' two timestamp shapes.

/** metav1.Time (conditions, status): RFC 3339 to the second. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * metav1.MicroTime (Lease times): exactly six fractional digits, or the apiserver refuses it.
 * client-node would send a Date with milliseconds but passes a string through untouched, so
 * callers put this string where its types say Date.
 */
export function microTime(d: Date): Date {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}
