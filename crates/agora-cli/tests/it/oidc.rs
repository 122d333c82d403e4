//! Signing in with OpenID Connect against a real provider: the npm package `oidc-provider`
//! (pinned in ci/oidc/package-lock.json) on loopback, with one confidential client, PKCE
//! required, and its development login and consent forms. A plain HTTP client plays the
//! browser: it keeps cookies and follows redirects by hand, so every hop is visible.
//!
//! Needs node (>= 20) and npm: the provider's packages are installed on first use
//! (`npm ci --prefix ci/oidc`). Without node these tests fail; they never skip.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use agora_govern::{MetaStore, Principal, Role};
use url::Url;

use crate::support::Hub;

const CLIENT_ID: &str = "agora-hub";
const CLIENT_SECRET: &str = "s3cret: with spaces & symbols/+=";

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ci/oidc")
}

/// Installs the provider's npm packages unless they are there. Test threads and processes
/// take turns through a file lock, so only one installs.
fn install_provider() {
    let dir = provider_dir();
    let lock = std::fs::File::create(dir.join(".npm-ci.lock")).unwrap();
    lock.lock().unwrap();
    if !dir.join("node_modules/.package-lock.json").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .unwrap_or_else(|e| {
                panic!("the OpenID Connect tests need node (>= 20) and npm on the PATH: {e}")
            });
        assert!(status.success(), "npm ci --prefix ci/oidc failed");
    }
}

/// Collects a child's output lines in the background, for assertions and failure messages.
fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    log
}

/// `node ci/oidc/provider.mjs`, killed on drop (also when a test panics). It also exits by
/// itself when its stdin closes, should this test process die without unwinding.
struct OidcProvider {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    issuer: String,
    stderr: Arc<Mutex<String>>,
}

impl OidcProvider {
    /// Starts the provider; it serves once [`OidcProvider::register`] names the client's
    /// redirect URI. `profile`: `id-token` or `userinfo-jwt` (see provider.mjs).
    fn start(profile: &str) -> Self {
        install_provider();
        let dir = provider_dir();
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .current_dir(&dir)
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_PROFILE", profile)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("the OpenID Connect tests need node (>= 20): {e}"));
        let stderr = collect(child.stderr.take().unwrap());
        let mut provider = Self {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            issuer: String::new(),
            stderr,
        };
        let line = provider.line();
        provider.issuer = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("provider said {line:?}"))
            .to_owned();
        provider
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "the provider exited:\n{}",
            self.stderr.lock().unwrap()
        );
        line.trim().to_owned()
    }

    fn register(&mut self, redirect_uri: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{redirect_uri}").unwrap();
        stdin.flush().unwrap();
        assert_eq!(self.line(), "ready");
    }

    /// Makes the provider rewrite the ID tokens it issues from now on (see provider.mjs).
    fn tamper(&self, mode: &str) {
        let r = ureq::post(&format!("{}/_test/tamper", self.issuer))
            .send_string(mode)
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `agora serve` with OpenID Connect on a loopback port chosen beforehand (the redirect URL
/// names it), stopped on drop.
struct Agora {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Agora {
    /// Starts the server; `configure` adds the OpenID Connect settings given the base URL.
    fn start(hub: &Hub, configure: impl Fn(&mut Command, &str)) -> Self {
        for _ in 0..10 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let base = format!("http://127.0.0.1:{port}");
            let mut cmd = hub.command(&["serve", "--listen", &format!("127.0.0.1:{port}")]);
            for var in [
                "AGORA_OIDC_ISSUER",
                "AGORA_OIDC_CLIENT_ID",
                "AGORA_OIDC_CLIENT_SECRET",
                "AGORA_OIDC_CLIENT_SECRET_FILE",
                "AGORA_OIDC_REDIRECT_URL",
                "AGORA_OIDC_SCOPES",
            ] {
                cmd.env_remove(var);
            }
            cmd.env("AGORA_LOG", "info");
            configure(&mut cmd, &base);
            let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
            let mut stderr = BufReader::new(child.stderr.take().unwrap());
            let mut seen = String::new();
            let listening = loop {
                let mut line = String::new();
                if stderr.read_line(&mut line).unwrap() == 0 {
                    break false;
                }
                seen.push_str(&line);
                if line.contains("Agora listening on ") {
                    break true;
                }
            };
            if listening {
                let log = collect(stderr);
                log.lock().unwrap().insert_str(0, &seen);
                return Self { child, base, log };
            }
            let _ = child.wait();
            // Someone took the port between our probe and the server's bind: try another.
            assert!(
                seen.contains("cannot listen"),
                "agora serve failed:\n{seen}"
            );
        }
        panic!("no free loopback port for agora serve");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log, from byte `since` on, holds `needle` (the server writes its log
    /// line before answering, but our reader thread may not have caught up yet).
    fn wait_log(&self, since: usize, needle: &str) {
        for _ in 0..500 {
            if self.log.lock().unwrap()[since..].contains(needle) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!(
            "{needle:?} not in the server log:\n{}",
            &self.log()[since..]
        );
    }
}

impl Drop for Agora {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hub whose `agora serve` signs in with the test provider.
struct Setup {
    hub: Hub,
    provider: OidcProvider,
    agora: Agora,
}

impl Setup {
    /// The client secret comes from an owner-only file; the profile is in the ID token.
    fn start() -> Self {
        Self::with(None, "id-token")
    }

    /// With `Some(secret)`, the hub gets its client secret from the environment instead.
    /// `profile`: where the provider puts name and email (see provider.mjs).
    fn with(env_secret: Option<&str>, profile: &str) -> Self {
        let hub = Hub::init();
        let secret_file = hub.data_dir().join("oidc-client-secret");
        std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut provider = OidcProvider::start(profile);
        let issuer = provider.issuer.clone();
        let agora = Agora::start(&hub, |cmd, base| {
            cmd.args(["--oidc-issuer", &issuer, "--oidc-client-id", CLIENT_ID])
                .args(["--oidc-redirect-url", &format!("{base}/auth/oidc/callback")]);
            match env_secret {
                Some(secret) => cmd.env("AGORA_OIDC_CLIENT_SECRET", secret),
                None => cmd.arg("--oidc-client-secret-file").arg(&secret_file),
            };
        });
        provider.register(&agora.url("/auth/oidc/callback"));
        Self {
            hub,
            provider,
            agora,
        }
    }

    fn store(&self) -> Store {
        Store::open(self.hub.data_dir())
    }

    /// Starts a sign-in at the hub; returns the provider's authorization URL.
    fn start_login(&self, browser: &mut Browser, query: &str) -> Url {
        let r = browser.get(&self.agora.url(&format!("/auth/oidc/login{query}")));
        assert_eq!(r.status, 302, "{}", r.body);
        let to = Url::parse(r.location.as_deref().unwrap()).unwrap();
        assert!(to.as_str().starts_with(&self.provider.issuer), "{to}");
        to
    }

    /// Signs in as `login` at the provider, starting from its authorization URL; returns the
    /// URL the provider sends the browser back to (not yet visited).
    fn at_provider(&self, browser: &mut Browser, authorize: &Url, login: &str) -> Url {
        let callback = self.agora.url("/auth/oidc/callback");
        let mut next = browser.get(authorize.as_str());
        for _ in 0..12 {
            if let Some(location) = &next.location {
                let to = browser.resolve(location);
                if to.as_str().starts_with(&callback) {
                    return to;
                }
                next = browser.get(to.as_str());
                continue;
            }
            assert_eq!(next.status, 200, "{}", next.body);
            let form = Form::parse(&next.body);
            let action = browser.resolve(&form.action);
            next = match form.prompt.as_str() {
                "login" => browser.post(
                    action.as_str(),
                    &[("prompt", "login"), ("login", login), ("password", "any")],
                ),
                "consent" => browser.post(action.as_str(), &[("prompt", "consent")]),
                other => panic!("unexpected prompt {other:?}"),
            };
        }
        panic!("the provider never sent the browser back");
    }

    /// A whole sign-in as `login`; returns the hub's answer to the callback.
    fn sign_in(&self, browser: &mut Browser, login: &str) -> Reply {
        let authorize = self.start_login(browser, "");
        let back = self.at_provider(browser, &authorize, login);
        browser.get(back.as_str())
    }
}

/// Reads the hub's metadata store directly, as the server does.
struct Store {
    rt: tokio::runtime::Runtime,
    meta: MetaStore,
}

impl Store {
    fn open(data_dir: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let meta = rt
            .block_on(MetaStore::open_sqlite(&data_dir.join("meta.db")))
            .unwrap();
        Self { rt, meta }
    }

    fn session(&self, token: &str) -> Option<Principal> {
        self.rt
            .block_on(self.meta.session_principal(token))
            .unwrap()
    }

    fn operator() -> Principal {
        Principal {
            name: "local-operator".into(),
            roles: vec![Role::Operator],
        }
    }
}

/// One HTTP answer, redirects not followed.
#[derive(Debug)]
struct Reply {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

impl Reply {
    fn cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }

    fn session_token(&self) -> String {
        let cookie = self
            .cookie("agora_session")
            .unwrap_or_else(|| panic!("no session cookie: {self:?}"));
        cookie["agora_session=".len()..]
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }
}

/// A browser reduced to what sign-in needs: cookies per host (paths ignored) and manual
/// redirects.
struct Browser {
    agent: ureq::Agent,
    jar: HashMap<String, BTreeMap<String, String>>,
    last: Option<Url>,
}

impl Browser {
    fn new() -> Self {
        Self {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            jar: HashMap::new(),
            last: None,
        }
    }

    fn resolve(&self, location: &str) -> Url {
        match &self.last {
            Some(base) => base.join(location).unwrap(),
            None => Url::parse(location).unwrap(),
        }
    }

    fn get(&mut self, url: &str) -> Reply {
        let request = self.agent.get(url);
        self.send(url, request, None)
    }

    fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Reply {
        let request = self.agent.post(url);
        self.send(url, request, Some(form))
    }

    fn send(
        &mut self,
        url: &str,
        mut request: ureq::Request,
        form: Option<&[(&str, &str)]>,
    ) -> Reply {
        let parsed = Url::parse(url).unwrap();
        let host = parsed.authority().to_owned();
        if let Some(cookies) = self.jar.get(&host).filter(|c| !c.is_empty()) {
            let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.set("Cookie", &header.join("; "));
        }
        let result = match form {
            Some(form) => request.send_form(form),
            None => request.call(),
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{url}: {e}"),
        };
        let set_cookies: Vec<String> = response
            .all("set-cookie")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let jar = self.jar.entry(host).or_default();
        for c in &set_cookies {
            let (pair, attributes) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let gone = attributes.to_ascii_lowercase().contains("max-age=0")
                || attributes.contains("1970");
            if gone || value.is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        self.last = Some(parsed);
        Reply {
            status: response.status(),
            location: response.header("location").map(str::to_owned),
            set_cookies,
            body: response.into_string().unwrap_or_default(),
        }
    }
}

/// The provider's login or consent form.
struct Form {
    action: String,
    prompt: String,
}

impl Form {
    fn parse(html: &str) -> Self {
        let attr = |after: &str, name: &str| -> String {
            let at = html
                .find(after)
                .unwrap_or_else(|| panic!("no {after} in {html}"));
            let rest = &html[at..];
            let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            let len = rest[start..].find('"').unwrap();
            rest[start..start + len].replace("&amp;", "&")
        };
        Self {
            action: attr("<form", "action"),
            prompt: attr("name=\"prompt\"", "value"),
        }
    }
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    let mut changed = url.clone();
    changed.query_pairs_mut().clear().extend_pairs(pairs);
    changed
}

/// An error page must say what happened and nothing about the machinery or the person.
fn assert_plain(reply: &Reply, expect: &str, setup: &Setup) {
    assert!(
        reply.body.contains(expect),
        "{expect:?} not in {}",
        reply.body
    );
    let port = setup.provider.issuer.rsplit(':').next().unwrap();
    for secret in [port, "alice", CLIENT_SECRET, "eyJ", "panicked"] {
        assert!(!reply.body.contains(secret), "{secret:?} in {}", reply.body);
    }
    assert!(reply.cookie("agora_session").is_none(), "{reply:?}");
}

#[test]
fn signs_in_end_to_end_and_maps_to_one_local_user() {
    let setup = Setup::start();
    let mut browser = Browser::new();

    let authorize = setup.start_login(&mut browser, "");
    for (name, expected) in [
        ("response_type", Some("code")),
        ("client_id", Some(CLIENT_ID)),
        ("code_challenge_method", Some("S256")),
        ("scope", Some("openid email profile")),
    ] {
        assert_eq!(query_param(&authorize, name).as_deref(), expected, "{name}");
    }
    for name in ["state", "nonce", "code_challenge"] {
        assert_eq!(query_param(&authorize, name).unwrap().len(), 43, "{name}");
    }
    assert_eq!(
        query_param(&authorize, "redirect_uri").unwrap(),
        setup.agora.url("/auth/oidc/callback")
    );
    let back = setup.at_provider(&mut browser, &authorize, "alice");
    assert_eq!(
        query_param(&back, "state"),
        query_param(&authorize, "state")
    );
    let done = browser.get(back.as_str());
    assert_eq!(done.status, 303, "{done:?}\n{}", setup.agora.log());
    assert_eq!(done.location.as_deref(), Some("/"));
    let cookie = done.cookie("agora_session").unwrap();
    for attribute in ["; HttpOnly", "; SameSite=Lax", "; Path=/", "; Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} not in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "http on loopback: {cookie}");
    let token = done.session_token();

    // The session names a new local user without roles, profile from the provider.
    let store = setup.store();
    let alice = store.session(&token).expect("a live session");
    assert!(alice.name.starts_with("oidc-"), "{}", alice.name);
    assert!(alice.roles.is_empty(), "{:?}", alice.roles);
    let user = store
        .rt
        .block_on(store.meta.user(&Store::operator(), &alice.name))
        .unwrap();
    assert_eq!(user.display_name, "User alice");
    assert_eq!(user.email.as_deref(), Some("alice@lab.example"));
    // Roles granted by an operator hold for the live session.
    store
        .rt
        .block_on(
            store
                .meta
                .set_user_roles(&Store::operator(), &alice.name, &[Role::Researcher]),
        )
        .unwrap();
    assert_eq!(store.session(&token).unwrap().roles, vec![Role::Researcher]);
    // The browser's session cookie is what the governance API authenticates.
    let me = browser.get(&setup.agora.url("/api/v1/me"));
    assert_eq!(me.status, 200, "{me:?}");
    let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(me["user"]["id"], alice.name.as_str(), "{me}");
    assert_eq!(me["roles"], serde_json::json!(["researcher"]), "{me}");
    assert_eq!(me["authenticated_by"], "session", "{me}");

    // The provider's callback works once: the state is spent.
    let replay = browser.get(back.as_str());
    assert_eq!(replay.status, 400);
    assert_plain(&replay, "sign-in is unknown, was already used", &setup);

    // Signing in again (another browser) gives a new session for the same user;
    // another person gets another user.
    let again = setup.sign_in(&mut Browser::new(), "alice");
    let token2 = again.session_token();
    assert_ne!(token2, token);
    assert_eq!(store.session(&token2).unwrap().name, alice.name);
    let bob = setup.sign_in(&mut Browser::new(), "bob");
    let bob = store.session(&bob.session_token()).unwrap();
    assert_ne!(bob.name, alice.name);

    // A spent code under a fresh sign-in: the provider refuses it (PKCE and single use).
    let mut browser = Browser::new();
    let fresh = setup.start_login(&mut browser, "");
    let code = query_param(&back, "code").unwrap();
    let state = query_param(&fresh, "state").unwrap();
    let forged = browser.get(
        &setup
            .agora
            .url(&format!("/auth/oidc/callback?code={code}&state={state}")),
    );
    assert_eq!(forged.status, 400, "{forged:?}");
    assert_plain(&forged, "(invalid_grant)", &setup);

    // return_to brings the browser back where it was; it never leaves the hub.
    let mut browser = Browser::new();
    let authorize = setup.start_login(&mut browser, "?return_to=/portal/projects");
    let back = setup.at_provider(&mut browser, &authorize, "alice");
    let done = browser.get(back.as_str());
    assert_eq!(done.location.as_deref(), Some("/portal/projects"));
    let evil = browser.get(
        &setup
            .agora
            .url("/auth/oidc/login?return_to=//evil.example/"),
    );
    assert_eq!(evil.status, 400);

    // Neither the person nor a secret appears in the server log.
    let log = setup.agora.log();
    for secret in ["alice", "bob", CLIENT_SECRET, &token, &code] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
}

#[test]
fn refuses_forged_cancelled_and_cross_browser_callbacks() {
    let setup = Setup::start();

    // A callback nobody started.
    let mut stranger = Browser::new();
    let r = stranger.get(&setup.agora.url("/auth/oidc/callback?code=abc&state=def"));
    assert_eq!(r.status, 400);
    assert_plain(&r, "unknown, was already used or has expired", &setup);
    let r = stranger.get(&setup.agora.url("/auth/oidc/callback"));
    assert_eq!(r.status, 400);

    // A wrong state is refused and leaves the real one usable.
    let mut browser = Browser::new();
    let authorize = setup.start_login(&mut browser, "");
    let back = setup.at_provider(&mut browser, &authorize, "alice");
    let wrong = browser.get(with_param(&back, "state", "x".repeat(43).as_str()).as_str());
    assert_eq!(wrong.status, 400);
    assert_plain(&wrong, "unknown", &setup);
    // Another issuer in the response (RFC 9207 mix-up) is refused, and spends the state.
    let mixed = browser.get(with_param(&back, "iss", "https://idp.invalid").as_str());
    assert_eq!(mixed.status, 400);
    assert_plain(&mixed, "another identity provider", &setup);
    let spent = browser.get(back.as_str());
    assert_eq!(spent.status, 400);
    assert_plain(&spent, "sign-in is unknown", &setup);

    // Login CSRF: a callback carried to another browser does not sign that browser in.
    let mut attacker = Browser::new();
    let authorize = setup.start_login(&mut attacker, "");
    let back = setup.at_provider(&mut attacker, &authorize, "mallory");
    let mut victim = Browser::new();
    let r = victim.get(back.as_str());
    assert_eq!(r.status, 400);
    assert_plain(&r, "not started in this browser", &setup);

    // Cancelling at the provider comes back as access_denied: a clear 403, no session.
    let mut browser = Browser::new();
    let authorize = setup.start_login(&mut browser, "");
    let page = browser.get(authorize.as_str());
    let interaction = browser.resolve(page.location.as_deref().unwrap());
    let mut hop = browser.get(&format!("{interaction}/abort"));
    let back = loop {
        let to = browser.resolve(hop.location.as_deref().expect("a redirect"));
        if to
            .as_str()
            .starts_with(&setup.agora.url("/auth/oidc/callback"))
        {
            break to;
        }
        hop = browser.get(to.as_str());
    };
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    let r = browser.get(back.as_str());
    assert_eq!(r.status, 403);
    assert_plain(&r, "did not grant access (access_denied)", &setup);

    // A nonce changed on the way to the provider: the ID token is refused.
    let mut browser = Browser::new();
    let authorize = setup.start_login(&mut browser, "");
    let tampered = with_param(&authorize, "nonce", "chosen-by-an-attacker");
    let back = setup.at_provider(&mut browser, &tampered, "alice");
    let since = setup.agora.log().len();
    let r = browser.get(back.as_str());
    assert_eq!(r.status, 502);
    assert_plain(&r, "could not be verified", &setup);
    setup.agora.wait_log(since, "nonce is not this sign-in's");

    // Without PKCE the provider refuses to start at all: the hub always sends it.
    let no_pkce = Url::parse(&format!(
        "{}/auth?response_type=code&client_id={CLIENT_ID}&scope=openid&redirect_uri={}",
        setup.provider.issuer,
        setup.agora.url("/auth/oidc/callback")
    ))
    .unwrap();
    let r = Browser::new().get(no_pkce.as_str());
    let to = r.location.unwrap_or_default();
    assert!(to.contains("error=invalid_request"), "{to}");
}

#[test]
fn takes_the_profile_from_a_signed_userinfo_answer_when_the_id_token_has_none() {
    // As at ProConnect: the ID token names the subject only.
    let setup = Setup::with(None, "userinfo-jwt");
    let store = setup.store();
    let profile = |reply: &Reply| {
        let principal = store.session(&reply.session_token()).unwrap();
        let user = store
            .rt
            .block_on(store.meta.user(&Store::operator(), &principal.name))
            .unwrap();
        (user.display_name, user.email)
    };
    let r = setup.sign_in(&mut Browser::new(), "carol");
    assert_eq!(r.status, 303, "{r:?}\n{}", setup.agora.log());
    assert_eq!(
        profile(&r),
        ("User carol".into(), Some("carol@lab.example".into()))
    );

    // An answer about someone else is not used; signing in still works, without a profile.
    setup.provider.tamper("userinfo-other-sub");
    let since = setup.agora.log().len();
    let r = setup.sign_in(&mut Browser::new(), "dave");
    assert_eq!(r.status, 303, "{r:?}");
    setup
        .agora
        .wait_log(since, "userinfo answer names another subject");
    assert_eq!(profile(&r), ("OpenID Connect user".into(), None));
}

#[test]
fn refuses_tampered_id_tokens_and_follows_key_rotation() {
    let setup = Setup::start();
    // A first sign-in caches the provider's keys.
    assert_eq!(setup.sign_in(&mut Browser::new(), "alice").status, 303);
    for (mode, reason) in [
        ("signature", "signature does not verify"),
        ("alg-none", "algorithm \"none\" is not accepted"),
        ("hs256-public-key", "algorithm \"HS256\" is not accepted"),
        ("wrong-aud", "audience does not include this client"),
        ("wrong-iss", "issued by another issuer"),
        ("expired", "has expired"),
        ("wrong-nonce", "nonce is not this sign-in's"),
        ("no-nonce", "nonce is not this sign-in's"),
        (
            "unknown-key",
            "no key of the provider's JWK Set fits the ID token (kid Some(\"rogue\"))",
        ),
    ] {
        setup.provider.tamper(mode);
        let since = setup.agora.log().len();
        let r = setup.sign_in(&mut Browser::new(), "alice");
        assert_eq!(r.status, 502, "{mode}: {r:?}");
        assert_plain(&r, "could not be verified", &setup);
        setup.agora.wait_log(since, reason);
    }
    // The provider rotates to a key the hub has not seen: it fetches the JWK Set again.
    setup.provider.tamper("rotated-key");
    let r = setup.sign_in(&mut Browser::new(), "alice");
    assert_eq!(r.status, 303, "{r:?}\n{}", setup.agora.log());
    setup.provider.tamper("none");
    let r = setup.sign_in(&mut Browser::new(), "alice");
    assert_eq!(r.status, 303, "{r:?}");
    assert!(setup.store().session(&r.session_token()).is_some());
}

#[test]
fn a_wrong_secret_or_an_unknown_or_unreachable_issuer_is_refused_cleanly() {
    // A client secret the provider does not know (given through the environment).
    let setup = Setup::with(Some("not-the-secret"), "id-token");
    let since = setup.agora.log().len();
    let r = setup.sign_in(&mut Browser::new(), "alice");
    assert_eq!(r.status, 502, "{r:?}");
    assert_plain(
        &r,
        "could not be completed with the identity provider",
        &setup,
    );
    setup
        .agora
        .wait_log(since, "refused this client (invalid_client)");
    assert!(!setup.agora.log().contains("not-the-secret"));

    // The provider's discovery document names http://127.0.0.1:<port>, not localhost.
    let hub = &setup.hub;
    let impostor = setup.provider.issuer.replace("127.0.0.1", "localhost");
    let agora = Agora::start(hub, |cmd, base| {
        cmd.args(["--oidc-issuer", &impostor, "--oidc-client-id", CLIENT_ID])
            .args(["--oidc-redirect-url", &format!("{base}/auth/oidc/callback")])
            .env("AGORA_OIDC_CLIENT_SECRET", CLIENT_SECRET);
    });
    let r = Browser::new().get(&agora.url("/auth/oidc/login"));
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("cannot be used right now"), "{}", r.body);
    assert!(!r.body.contains("localhost"), "{}", r.body);
    agora.wait_log(0, "names issuer");

    // Nothing listening there at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let agora = Agora::start(hub, |cmd, base| {
        cmd.args(["--oidc-issuer", &nowhere, "--oidc-client-id", CLIENT_ID])
            .args(["--oidc-redirect-url", &format!("{base}/auth/oidc/callback")])
            .env("AGORA_OIDC_CLIENT_SECRET", CLIENT_SECRET);
    });
    let r = Browser::new().get(&agora.url("/auth/oidc/login"));
    assert_eq!(r.status, 503, "{r:?}");
    // Without OpenID Connect configured, the endpoints do not exist.
    let plain = Agora::start(hub, |_, _| {});
    assert_eq!(
        Browser::new().get(&plain.url("/auth/oidc/login")).status,
        404
    );
}

#[test]
fn serve_refuses_unsafe_or_incomplete_configuration() {
    let hub = Hub::init();
    let secret = hub.data_dir().join("secret");
    std::fs::write(&secret, "s").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let secret = secret.to_str().unwrap();
    let good = [
        "--oidc-issuer",
        "https://idp.example/realms/agora",
        "--oidc-client-id",
        "agora",
        "--oidc-redirect-url",
        "https://hub.example/auth/oidc/callback",
    ];
    let with = |changes: &[(&str, &str)]| -> Vec<String> {
        let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0"]
            .iter()
            .chain(good.iter())
            .map(|s| s.to_string())
            .collect();
        for (flag, value) in changes {
            match args.iter().position(|a| a == flag) {
                Some(i) if value.is_empty() => {
                    args.drain(i..i + 2);
                }
                Some(i) => args[i + 1] = value.to_string(),
                None => args.extend([flag.to_string(), value.to_string()]),
            }
        }
        args
    };
    for (changes, expect) in [
        (vec![], "needs the client secret"),
        (
            vec![("--oidc-client-secret-file", secret)],
            "readable by other users",
        ),
        (
            vec![("--oidc-issuer", "http://idp.example/")],
            "must be an https URL",
        ),
        (
            vec![("--oidc-redirect-url", "https://hub.example/elsewhere")],
            "must be an https URL (http only on loopback) whose path ends with /auth/oidc/callback",
        ),
        (
            vec![("--oidc-scopes", "email profile")],
            "must include openid",
        ),
        (vec![("--oidc-client-id", "")], "needs --oidc-client-id"),
        (vec![("--oidc-issuer", "")], "need --oidc-issuer"),
    ] {
        let args = with(&changes);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = hub.command(&args);
        cmd.env_remove("AGORA_OIDC_CLIENT_SECRET")
            .env_remove("AGORA_OIDC_CLIENT_SECRET_FILE");
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{changes:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expect),
            "{changes:?}: {expect:?} not in {stderr}"
        );
    }
    // There is no flag for the secret itself.
    let args = with(&[("--oidc-client-secret", "s")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = hub.fails(&args);
    assert!(err.contains("unexpected argument"), "{err}");
}
