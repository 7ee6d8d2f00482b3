// Plain-JSON GETs against the apiserver. Informers use these for lists so that listed objects
// look exactly like watched ones (raw JSON, string timestamps), unlike the typed clients' models.
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type RequestOptions } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { parseJson } from '../util/json.js';

/**
 * A list may carry every object of a kind, so it gets more than an ordinary call; 60 s is the
 * apiserver's own limit for non-watch requests (--request-timeout), past which it gives up anyway.
 */
export const LIST_TIMEOUT_MS = 60_000;

export class KubeHttpError extends Error {
  constructor(readonly statusCode: number, readonly body: string, path: string) {
    super(`GET ${path}: HTTP ${statusCode}: ${body.slice(0, 300)}`);
  }
}

export interface GetJsonOptions {
  /** Budget for the whole call, from sending the request to the last byte of the answer. */
  timeoutMs?: number;
}

export async function getJson<T>(kc: KubeConfig, path: string, query: Record<string, string | undefined> = {}, options: GetJsonOptions = {}): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  const opts: RequestOptions & Record<string, unknown> = { method: 'GET', headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts as never);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const timeoutMs = options.timeoutMs ?? LIST_TIMEOUT_MS;
  return new Promise<T>((resolve, reject) => {
    // A deadline on the whole exchange, not an idle timeout (req.setTimeout): an apiserver that
    // trickles bytes, or answers headers and then stalls, must not hold the informer forever.
    const timer = setTimeout(() => {
      const err = new Error(`GET ${path}: Kubernetes API call timed out after ${timeoutMs} ms`);
      reject(err);
      req.destroy(err);
    }, timeoutMs);
    const fail = (err: unknown) => {
      clearTimeout(timer);
      reject(err);
    };
    const req = send(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new KubeHttpError(res.statusCode ?? 0, body, path));
        else {
          try {
            resolve(parseJson<T>(body, `GET ${path}`));
          } catch (err) {
            reject(err);
          }
        }
      });
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}
