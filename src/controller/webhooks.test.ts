import { describe, expect, it } from 'vitest';
import { clientConfig, servingNames } from './webhooks.js';

describe('where the apiserver reaches the webhooks', () => {
  const service = { service: { namespace: 'pgpilot-system', name: 'pgpilot-webhook', port: 9443 } };

  it('certifies every name of the Service, or the URL\'s host (IP or DNS)', () => {
    expect(servingNames(service)).toEqual({
      dnsNames: ['pgpilot-webhook', 'pgpilot-webhook.pgpilot-system', 'pgpilot-webhook.pgpilot-system.svc', 'pgpilot-webhook.pgpilot-system.svc.cluster.local'],
      ipAddresses: [],
    });
    expect(servingNames({ url: 'https://127.0.0.1:9443' })).toEqual({ dnsNames: [], ipAddresses: ['127.0.0.1'] });
    expect(servingNames({ url: 'https://[::1]:9443' })).toEqual({ dnsNames: [], ipAddresses: ['::1'] });
    expect(servingNames({ url: 'https://operator.example:9443' })).toEqual({ dnsNames: ['operator.example'], ipAddresses: [] });
  });

  it('builds a clientConfig with the path and the bundle, the other form nulled for a merge patch', () => {
    const b64 = Buffer.from('PEM').toString('base64');
    expect(clientConfig(service, '/convert', 'PEM')).toEqual({ service: { ...service.service, path: '/convert' }, url: null, caBundle: b64 });
    expect(clientConfig({ url: 'https://127.0.0.1:9443/' }, '/convert', 'PEM')).toEqual({ url: 'https://127.0.0.1:9443/convert', service: null, caBundle: b64 });
  });
});
