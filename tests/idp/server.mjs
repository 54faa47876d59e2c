// A real OpenID provider for mlgate's OIDC tests: node-oidc-provider (OpenID Certified), on
// loopback only, with test users, groups and clients. Nothing here is for production.
//
//   IDP_PORT=9400 MLGATE_URL=http://127.0.0.1:5000 node server.mjs
//
// Prints "idp: ready on http://127.0.0.1:<port>" once it listens. Environment:
//   IDP_PORT            port (default 9400)
//   MLGATE_URL          where mlgate is reached (for the registered redirect URIs)
//   IDP_PROVIDER_NAME   mlgate's name for this issuer, used in the callback path (default "local")
//   IDP_CLIENT_SECRET   secret of the confidential client "mlgate" (default "mlgate-test-secret")
//
// Users (password = "<name>-password"):
//   alice: groups ["ml-writers"]        bob: groups ["ml-readers"]
//   carol: groups ["marketing"] (maps to nothing in mlgate)
// Clients:
//   mlgate     confidential, authorization code + PKCE, redirect <MLGATE_URL>/_mlgate/oidc/<name>/callback
//   mlflow-cli public (PKCE), redirect http://127.0.0.1/cli-callback, used by tests to get tokens
// Access tokens are JWTs (RFC 9068, typ at+jwt) for the resource "urn:mlgate" (aud "mlgate-api").

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.IDP_PORT || 9400);
const host = '127.0.0.1';
const issuer = `http://${host}:${port}`;
const mlgate = (process.env.MLGATE_URL || 'http://127.0.0.1:5000').replace(/\/$/, '');
const providerName = process.env.IDP_PROVIDER_NAME || 'local';
const clientSecret = process.env.IDP_CLIENT_SECRET || 'mlgate-test-secret';

export const USERS = {
  alice: { groups: ['ml-writers'], email: 'alice@example.test', name: 'Alice Writer' },
  bob: { groups: ['ml-readers'], email: 'bob@example.test', name: 'Bob Reader' },
  carol: { groups: ['marketing'], email: 'carol@example.test', name: 'Carol Outsider' },
};

function signingKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: `rsa-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' },
    { ...ec, kid: `ec-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' },
  ];
}

const claimsOf = (id) => {
  const u = USERS[id];
  return { sub: id, preferred_username: id, name: u.name, email: u.email, email_verified: true, groups: u.groups };
};

const configuration = {
  clients: [
    {
      client_id: 'mlgate',
      client_secret: clientSecret,
      redirect_uris: [`${mlgate}/_mlgate/oidc/${providerName}/callback`],
      post_logout_redirect_uris: [`${mlgate}/_mlgate/login`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'mlflow-cli',
      redirect_uris: ['http://127.0.0.1/cli-callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    },
  ],
  jwks: { keys: signingKeys() },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // Put the requested claims (username, groups) into the ID token, as Cognito and Entra do.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.type = 'html';
        ctx.body = `<!doctype html><title>Sign out</title><h1>Sign out of the test IdP?</h1>${form}
          <button id="idp-logout" type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>`;
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.type = 'html';
        ctx.body = '<!doctype html><title>Signed out</title><h1 id="idp-signed-out">Signed out of the test IdP</h1>';
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:mlgate',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'openid profile email groups',
        audience: 'mlgate-api',
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: async (ctx, token) => {
    if (token.kind !== 'AccessToken' || !USERS[token.accountId]) return undefined;
    const c = claimsOf(token.accountId);
    return { preferred_username: c.preferred_username, groups: c.groups };
  },
  findAccount: async (ctx, id) => {
    if (!USERS[id]) return undefined;
    return { accountId: id, claims: async () => claimsOf(id) };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { IdToken: 600, AccessToken: 600, Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60 },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>IdP error</title><h1 id="idp-error">${escape(out.error)}</h1><p>${escape(out.error_description || '')}</p>`;
  },
};

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const provider = new Provider(issuer, configuration);

function loginPage(uid, error) {
  return `<!doctype html><html><head><title>Test IdP sign-in</title></head><body>
<h1>Test IdP</h1>${error ? `<p id="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>User <input id="login" name="login" autocomplete="off"></label>
<label>Password <input id="password" type="password" name="password"></label>
<button id="submit" type="submit">Sign in</button>
<button id="abort" type="submit" formaction="/interaction/${uid}/abort">Cancel</button>
</form></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) throw new Error('form too large');
  }
  return Object.fromEntries(new URLSearchParams(body));
}

async function interaction(req, res) {
  const url = new URL(req.url, issuer);
  const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|abort))?$/);
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== m[1]) throw new Error('interaction mismatch');
  const { prompt, params } = details;
  if (req.method === 'POST' && m[2] === 'abort') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user cancelled the sign-in' }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && m[2] === 'login') {
    const form = await readForm(req);
    if (!USERS[form.login] || form.password !== `${form.login}-password`) {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(loginPage(details.uid, 'Invalid user or password'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: form.login } }, { mergeWithLastSubmission: false });
  }
  if (prompt.name === 'login') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end(loginPage(details.uid));
  }
  if (prompt.name === 'consent') {
    // Test clients are first-party: consent is given without asking.
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (!grant) grant = new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  res.writeHead(400);
  res.end('unexpected prompt');
}

const callback = provider.callback();
const server = createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('interaction failed:', err);
      if (!res.headersSent) res.writeHead(500);
      res.end('interaction failed');
    });
    return;
  }
  callback(req, res);
});
provider.on('server_error', (ctx, err) => console.error('idp server_error:', err));
server.listen(port, host, () => {
  console.log(`idp: ready on ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
