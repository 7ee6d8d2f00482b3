import { describe, expect, it } from 'vitest';
import { nextWebhookCa } from './webhook-ca.js';
import { certificateInfo } from './x509.js';

const DAY = 24 * 3600;
const at = (days: number) => new Date(Date.UTC(2026, 0, 1) + days * DAY * 1000);
const certs = (bundle: string) => bundle.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;

describe('the webhook CA', () => {
  it('is created when the Secret has none (or an unreadable one)', async () => {
    const first = await nextWebhookCa(undefined, at(0), 30 * DAY);
    expect(first.changed).toBe(true);
    expect(certificateInfo(first.ca.ca.cert).isCa).toBe(true);
    expect(first.ca.bundle).toBe(first.ca.ca.cert);
    const garbage = await nextWebhookCa({ ca: { cert: 'nope', key: 'nope' }, bundle: '' }, at(0), 30 * DAY);
    expect(garbage.changed).toBe(true);
    expect(certs(garbage.ca.bundle)).toBe(1);
  });

  it('is kept while young, and renewed at 2/3 of its life with the old one still in the bundle', async () => {
    const first = (await nextWebhookCa(undefined, at(0), 30 * DAY)).ca;
    expect(await nextWebhookCa(first, at(19), 30 * DAY)).toEqual({ ca: first, changed: false });
    const renewed = await nextWebhookCa(first, at(21), 30 * DAY);
    expect(renewed.changed).toBe(true);
    expect(renewed.ca.ca.cert).not.toBe(first.ca.cert);
    expect(renewed.ca.bundle).toBe(renewed.ca.ca.cert + first.ca.cert);
  });

  it('drops a previous CA that has expired from the bundle', async () => {
    const first = (await nextWebhookCa(undefined, at(0), 30 * DAY)).ca;
    const renewed = await nextWebhookCa(first, at(31), 30 * DAY);
    expect(certs(renewed.ca.bundle)).toBe(1);
  });
});
