// A real OpenID provider (the `oidc-provider` package) on loopback, for the end-to-end tests of
// Agora's OpenID Connect login (crates/agora-cli/tests/it/oidc.rs).
//
// Startup, over stdio, because the issuer and the client's redirect URI each need the other's
// port:
//   prints `listening <origin>`  once its port is bound (the issuer is <origin>);
//   reads  one line              the registered client's redirect URI (Agora under test);
//   prints `ready`               once it serves OpenID Connect.
// Environment: OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, and OIDC_PROFILE:
//   id-token      (default) name and email in the ID token, as Keycloak does;
//   userinfo-jwt  the ID token names only the subject; the profile (email, given_name,
//                 usual_name) comes from a signed userinfo answer, as ProConnect does.
//
// One confidential client (client_secret_basic), code flow only, PKCE (S256) required.
// Logging in uses oidc-provider's own development interactions: any login name and password;
// the login name becomes the subject, with email `<login>@lab.example` and name `User <login>`
// (or given name `User`, usual name `<login>`).
//
// Fault injection for negative tests (the one thing not stock about this provider):
// `POST /_test/tamper` with body `<mode>` rewrites the ID token of every later token response:
//   none              leave it alone (the default)
//   signature         corrupt the signature
//   alg-none          unsigned token, `alg: none`
//   hs256-public-key  HS256 with the provider's public key as the HMAC secret (key confusion)
//   wrong-aud, wrong-iss, expired, wrong-nonce, no-nonce
//                     change that claim and re-sign with the provider's real key
//   unknown-key       sign with a key the JWKS never publishes
//   rotated-key       sign with a new key, published in the JWKS from now on (key rotation)
//   userinfo-other-sub  (OIDC_PROFILE=userinfo-jwt) the signed userinfo answer names another
//                     subject, re-signed with the real key
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as readline from 'node:readline';

import Provider from 'oidc-provider';

const clientId = process.env.OIDC_CLIENT_ID;
const clientSecret = process.env.OIDC_CLIENT_SECRET;
const userinfoProfile = process.env.OIDC_PROFILE === 'userinfo-jwt';
if (!clientId || !clientSecret) {
  console.error('OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be set');
  process.exit(2);
}

function rsaKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  return { privateKey, jwk };
}

const signing = rsaKey('main');
const rogue = rsaKey('rogue');
const next = rsaKey('next');
let tamper = 'none';
let rotated = false;

const b64 = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const unb64 = (part) => JSON.parse(Buffer.from(part, 'base64url').toString());
const publicJwk = ({ kty, n, e, kid, alg, use }) => ({ kty, n, e, kid, alg, use });

function rs256(header, payload, key) {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

function rewrite(idToken) {
  const [h, p, s] = idToken.split('.');
  const header = unb64(h);
  const payload = unb64(p);
  const now = Math.floor(Date.now() / 1000);
  switch (tamper) {
    case 'signature': {
      const sig = Buffer.from(s, 'base64url');
      sig[sig.length - 1] ^= 0x01;
      return `${h}.${p}.${sig.toString('base64url')}`;
    }
    case 'alg-none':
      return `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`;
    case 'hs256-public-key': {
      const pem = crypto.createPublicKey({ key: publicJwk(signing.jwk), format: 'jwk' })
        .export({ type: 'spki', format: 'pem' });
      const input = `${b64({ ...header, alg: 'HS256' })}.${p}`;
      return `${input}.${crypto.createHmac('sha256', pem).update(input).digest('base64url')}`;
    }
    case 'wrong-aud': return rs256(header, { ...payload, aud: 'someone-else' }, signing.privateKey);
    case 'wrong-iss': return rs256(header, { ...payload, iss: 'https://idp.invalid' }, signing.privateKey);
    case 'expired': return rs256(header, { ...payload, iat: now - 7200, exp: now - 3600 }, signing.privateKey);
    case 'wrong-nonce': return rs256(header, { ...payload, nonce: 'not-the-nonce' }, signing.privateKey);
    case 'no-nonce': {
      const { nonce, ...rest } = payload;
      return rs256(header, rest, signing.privateKey);
    }
    case 'unknown-key': return rs256({ ...header, kid: 'rogue' }, payload, rogue.privateKey);
    case 'rotated-key': return rs256({ ...header, kid: 'next' }, payload, next.privateKey);
    default: return idToken;
  }
}

const server = http.createServer((req, res) => {
  res.statusCode = 503;
  res.end('not ready');
});

server.listen(0, '127.0.0.1', () => {
  const origin = `http://127.0.0.1:${server.address().port}`;
  console.log(`listening ${origin}`);
  const input = readline.createInterface({ input: process.stdin });
  input.once('line', (line) => start(origin, line.trim()));
  // Whoever started us holds our stdin: when it goes (even killed), so do we.
  input.on('close', () => process.exit(0));
});

function start(issuer, redirectUri) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...(userinfoProfile ? { userinfo_signed_response_alg: 'RS256' } : {}),
    }],
    pkce: { required: () => true },
    jwks: { keys: [signing.jwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    features: { jwtUserinfo: { enabled: userinfoProfile } },
    claims: userinfoProfile
      ? { openid: ['sub'], email: ['email'], profile: ['given_name', 'usual_name'] }
      : { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // With the profile in the ID token (Keycloak's default), scope claims go there too;
    // otherwise only userinfo has them.
    conformIdTokenClaims: userinfoProfile,
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return userinfoProfile
            ? { sub: id, email: `${id}@lab.example`, given_name: 'User', usual_name: id }
            : { sub: id, email: `${id}@lab.example`, email_verified: true, name: `User ${id}` };
        },
      };
    },
  });

  provider.use(async (ctx, nextMiddleware) => {
    if (ctx.path === '/_test/tamper' && ctx.method === 'POST') {
      let body = '';
      for await (const chunk of ctx.req) body += chunk;
      tamper = body.trim();
      if (tamper === 'rotated-key') rotated = true;
      ctx.body = { tamper };
      return;
    }
    await nextMiddleware();
    if (ctx.path === '/token' && ctx.body && ctx.body.id_token) {
      ctx.body = { ...ctx.body, id_token: rewrite(ctx.body.id_token) };
    }
    if (ctx.path === '/me' && tamper === 'userinfo-other-sub' && typeof ctx.body === 'string') {
      const [h, p] = ctx.body.split('.');
      ctx.body = rs256(unb64(h), { ...unb64(p), sub: 'someone-else' }, signing.privateKey);
    }
    if (ctx.path === '/jwks' && rotated && ctx.body && ctx.body.keys) {
      ctx.body = { keys: [...ctx.body.keys, publicJwk(next.jwk)] };
    }
  });

  server.removeAllListeners('request');
  server.on('request', provider.callback());
  console.log('ready');
}
