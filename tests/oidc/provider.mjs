// A real OpenID Connect provider for Omnirail's staff-identity tests and for the walk-through of
// docs/identity.md: panva's oidc-provider (OpenID Certified), with its development sign-in pages.
// Nothing here mints a token: tokens come out of a real authorization-code flow with PKCE.
//
//   node provider.mjs --port 9400 [--keys-dir DIR] [--kids k1[,k0]] [--alg RS256|ES256|PS256]
//                     [--audience api://omnirail] [--roles '{"usr_credit_001":["credit_analyst"]}']
//                     [--clock-ahead-secs N] [--redirect-uris URI[,URI...]]
//
// - Issuer: http://127.0.0.1:PORT. One public client, `omnirail-test`, redirect URIs
//   http://127.0.0.1/callback or those --redirect-uris lists (the console's
//   http://127.0.0.1:PORT/console/callback), PKCE required.
// - Access tokens are JWTs (RFC 9068) for the resource the flow asks for (`resource`), by default
//   the audience given; `sub` is the login typed on the sign-in page, `preferred_username` the same,
//   `employee_id` it with `emp-` in front, `roles` what --roles gives the login; with
//   --clock-ahead-secs, `nbf` that many seconds ahead (a provider whose clock runs fast).
// - Signing keys live in --keys-dir as <kid>.json, made on first use: the first of --kids signs,
//   every one listed is published. Restarting with `--kids k2,k1` rotates to k2 and keeps k1's
//   tokens valid; `--kids k2` drops k1.
// - GET /_test/stats answers how often discovery and the JWKS were fetched.
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'keys-dir': { type: 'string', default: join(tmpdir(), 'omnirail-oidc-keys') },
    kids: { type: 'string', default: 'k1' },
    alg: { type: 'string', default: 'RS256' },
    audience: { type: 'string', default: 'api://omnirail' },
    roles: { type: 'string', default: '{}' },
    'clock-ahead-secs': { type: 'string', default: '0' },
    'redirect-uris': { type: 'string', default: 'http://127.0.0.1/callback' },
  },
});
const port = Number(args.port);
if (!Number.isInteger(port) || port <= 0) {
  console.error('--port is required');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const roles = JSON.parse(args.roles);
const ahead = Number(args['clock-ahead-secs']);

async function key(kid) {
  mkdirSync(args['keys-dir'], { recursive: true });
  const file = join(args['keys-dir'], `${kid}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const { privateKey } = await generateKeyPair(args.alg, { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: args.alg, use: 'sig' };
  writeFileSync(file, JSON.stringify(jwk));
  return jwk;
}
const keys = await Promise.all(args.kids.split(',').map(key));

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'omnirail-test',
    token_endpoint_auth_method: 'none',
    redirect_uris: args['redirect-uris'].split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys },
  pkce: { required: () => true },
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => args.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        scope: 'staff',
        audience: resource,
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: keys[0].alg } },
      }),
    },
  },
  extraTokenClaims: (_ctx, token) => ({
    preferred_username: token.accountId,
    employee_id: `emp-${token.accountId}`,
    roles: roles[token.accountId] ?? [],
    // A provider whose clock runs ahead issues tokens valid only from its own "now".
    ...(ahead ? { nbf: Math.floor(Date.now() / 1000) + ahead } : {}),
  }),
});

const stats = { discovery: 0, jwks: 0 };
const handle = provider.callback();
createServer((req, res) => {
  if (req.url === '/_test/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.url.startsWith('/.well-known/openid-configuration')) stats.discovery += 1;
  if (req.url.startsWith('/jwks')) stats.jwks += 1;
  handle(req, res);
}).listen(port, '127.0.0.1', () => console.log(`oidc-provider listening at ${issuer}`));
