//! Issue 29 part 4: the admin page. HTTP-level tests of its authentication and headers, and
//! one test that drives Debian's real `chromium` through `chromedriver` (WebDriver): sign in,
//! the tenant list, the tenant page, the paste box explaining a response signed with the wrong
//! key, `<script>` in values staying text, signing out. Screenshots of each page go to a temp
//! folder, or to `docs/` when `WRITE_SCREENSHOTS=1` (how the ones in docs/ were made).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use saml_validator::config::Config;
use saml_validator::service::Service;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use saml_validator::transport::{admin, frontend::Frontend, http};
use serde_json::{json, Value};

use crate::support::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef-admin";
const SIGN_ON: &str = "https://contoso.jitbit.example/helpdesk/User/Login";

struct Admin {
    validate: SocketAddr,
    admin: SocketAddr,
}

/// The service with its validation listener and its admin listener, one frontend between them.
fn start(idp: &TestIdp, name: &str) -> Admin {
    let dir = temp_dir(name);
    let token_file = dir.join("admin-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let text = format!(
        "{}sign_on_url = \"{SIGN_ON}\"\n\n[admin]\nenabled = true\naddr = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
        config_text(idp, ""),
        token_file.display()
    );
    let config = Config::parse(&text, std::path::Path::new("."), Utc::now()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let service = Arc::new(Service::new(&config));
        let frontend = Arc::new(Frontend::new(service, &config).unwrap());
        let settings = config.admin.clone().unwrap();
        let admin_state = Arc::new(admin::AdminState::new(frontend.clone(), &config, &settings));
        let state = Arc::new(http::State::new(frontend, &config));
        actix_web::rt::System::new().block_on(async move {
            let (main, main_addrs) = http::bind(state, "127.0.0.1:0", 1, None).unwrap();
            let (page, page_addrs) = admin::bind(admin_state, &settings.addr, None).unwrap();
            tx.send(Admin { validate: main_addrs[0], admin: page_addrs[0] }).unwrap();
            let _ = futures_util::future::join(main, page).await;
        });
    });
    rx.recv().unwrap()
}

fn wrong_key_response() -> String {
    let (real, spec) =
        (TestIdp::generate().unwrap(), ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 2, 3));
    post_binding(&spec.signed(&real, Signing::Assertion).unwrap())
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[test]
fn every_admin_page_refuses_a_request_without_the_token() {
    let idp = TestIdp::generate().unwrap();
    let s = start(&idp, "admin-refuses");
    for path in ["/admin", "/admin/tenants/contoso", "/admin/tenants/contoso/sp-metadata"] {
        for headers in [vec![], vec![("Authorization", "Bearer wrong-token-0123456789abcdef0123456789")]] {
            let reply = request(s.admin, "GET", path, b"", &headers);
            assert_eq!(reply.status, 401, "{path} {headers:?}");
            assert!(reply.body.contains("name=\"token\"") && !reply.body.contains(SP), "{path}: {}", reply.body);
        }
        let signed_in = request(s.admin, "GET", path, b"", &[("Authorization", &bearer())]);
        assert_eq!(signed_in.status, 200, "{path}: {}", signed_in.body);
    }
    let diagnose = request(s.admin, "POST", "/admin/tenants/contoso/diagnose", b"saml_response=x", &[]);
    assert_eq!(diagnose.status, 401);
    let wrong = request(s.admin, "POST", "/admin/login", format!("token={TOKEN}x").as_bytes(), &[]);
    assert_eq!((wrong.status, wrong.header("set-cookie")), (401, None));
    // The validation listener has no admin page, and the admin listener no API.
    assert_eq!(request(s.validate, "GET", "/admin", b"", &[("Authorization", &bearer())]).status, 404);
    assert_eq!(request(s.admin, "POST", "/v1/validate", b"{}", &[("Authorization", &bearer())]).status, 404);
}

#[test]
fn pages_carry_a_policy_that_allows_no_script_and_no_framing() {
    let idp = TestIdp::generate().unwrap();
    let s = start(&idp, "admin-headers");
    for path in ["/admin", "/admin/login", "/admin/tenants/contoso", "/admin/nowhere"] {
        let reply = request(s.admin, "GET", path, b"", &[("Authorization", &bearer())]);
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"), "{path}: {csp}");
        assert!(!csp.contains("script-src") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert!(!reply.body.contains("<script"), "{path}");
    }
    // The filter form sends every field, empty ones too; a bad value is a page saying so.
    let filtered = request(s.admin, "GET", "/admin?state=&expiring_within_days=", b"", &[("Authorization", &bearer())]);
    assert!(filtered.status == 200 && filtered.body.contains("/admin/tenants/contoso"), "{}", filtered.body);
    let none = request(s.admin, "GET", "/admin?state=unavailable", b"", &[("Authorization", &bearer())]);
    assert!(none.status == 200 && none.body.contains("No tenant matches"), "{}", none.body);
    let bad = request(s.admin, "GET", "/admin?state=%3Cb%3E", b"", &[("Authorization", &bearer())]);
    assert!(bad.status == 400 && bad.body.contains("&lt;b&gt;") && !bad.body.contains("<b>"), "{}", bad.body);
    let metadata = request(s.admin, "GET", "/admin/tenants/contoso/sp-metadata", b"", &[("Authorization", &bearer())]);
    assert!(metadata.body.contains("EntityDescriptor") && metadata.body.contains(SP), "{}", metadata.body);
    assert!(metadata.header("content-disposition").unwrap().starts_with("attachment"));
}

#[test]
fn the_session_cookie_is_strict_and_cross_site_posts_are_refused() {
    let idp = TestIdp::generate().unwrap();
    let s = start(&idp, "admin-cookie");
    let origin = format!("http://{}", s.admin);
    let login = request(s.admin, "POST", "/admin/login", format!("token={TOKEN}").as_bytes(), &[("Origin", &origin)]);
    assert_eq!((login.status, login.header("location")), (303, Some("/admin")));
    let set_cookie = login.header("set-cookie").unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=28800"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    assert_eq!(request(s.admin, "GET", "/admin", b"", &[("Cookie", &cookie)]).status, 200);
    // A forged expiry (the MAC covers it) and a foreign site's post are refused.
    let (expires, mac) = cookie.split_once('=').unwrap().1.split_once('.').unwrap();
    let forged = format!("saml_admin_session={}.{mac}", expires.parse::<i64>().unwrap() - 1);
    assert_eq!(request(s.admin, "GET", "/admin", b"", &[("Cookie", &forged)]).status, 401);
    let form = format!("saml_response={}", wrong_key_response().replace('+', "%2B").replace('/', "%2F"));
    let path = "/admin/tenants/contoso/diagnose";
    for foreign in [
        [("Cookie", cookie.as_str()), ("Origin", "http://evil.example")],
        [("Cookie", &cookie), ("Sec-Fetch-Site", "cross-site")],
    ] {
        assert_eq!(request(s.admin, "POST", path, form.as_bytes(), &foreign).status, 403, "{foreign:?}");
    }
    let same = request(s.admin, "POST", path, form.as_bytes(), &[("Cookie", &cookie), ("Origin", &origin)]);
    assert_eq!(same.status, 200);
    assert!(same.body.contains("signature_invalid"), "{}", same.body);
    // Behind a reverse proxy that rewrites Host, the browser's Sec-Fetch-Site decides.
    let proxied =
        [("Cookie", cookie.as_str()), ("Origin", "https://admin.example.com"), ("Sec-Fetch-Site", "same-origin")];
    assert_eq!(request(s.admin, "POST", path, form.as_bytes(), &proxied).status, 200);
    let cross_logout =
        request(s.admin, "POST", "/admin/logout", b"", &[("Cookie", &cookie), ("Sec-Fetch-Site", "cross-site")]);
    assert_eq!((cross_logout.status, cross_logout.header("set-cookie")), (403, None));
    let cross_login = request(
        s.admin,
        "POST",
        "/admin/login",
        format!("token={TOKEN}").as_bytes(),
        &[("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!((cross_login.status, cross_login.header("set-cookie")), (403, None));
}

/// A session cookie for `expires`, made as the service makes it (the test knows the token).
fn session_for(expires: i64) -> String {
    let key = openssl::pkey::PKey::hmac(TOKEN.as_bytes()).unwrap();
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    let mac = signer.sign_oneshot_to_vec(format!("saml-validator admin session {expires}").as_bytes()).unwrap();
    format!("{expires}.{}", mac.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[test]
fn sessions_expire_and_only_the_exact_cookie_name_counts() {
    let idp = TestIdp::generate().unwrap();
    let s = start(&idp, "admin-expiry");
    let now = Utc::now().timestamp();
    let status = |cookie: &str| request(s.admin, "GET", "/admin", b"", &[("Cookie", cookie)]).status;
    assert_eq!(status(&format!("saml_admin_session={}", session_for(now + 600))), 200, "a well-made session");
    // Correctly MACed, but expired, or dated beyond the 8 hours a session may last.
    assert_eq!(status(&format!("saml_admin_session={}", session_for(now - 1))), 401);
    assert_eq!(status(&format!("saml_admin_session={}", session_for(now + 8 * 3600 + 60))), 401);
    for name in ["xsaml_admin_session", "saml_admin_session_x", "saml_admin_sessio"] {
        assert_eq!(status(&format!("{name}={}", session_for(now + 600))), 401, "{name}");
    }
    // A planted cookie of the same name sent first does not hide the real one.
    let both = format!("saml_admin_session=planted; saml_admin_session={}", session_for(now + 600));
    assert_eq!(status(&both), 200);
}

#[test]
fn the_real_binary_serves_the_admin_page_on_its_own_port() {
    let idp = TestIdp::generate().unwrap();
    let dir = temp_dir("admin-serve");
    std::fs::write(dir.join("admin-token"), TOKEN).unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let text = format!(
        "{}\n[admin]\nenabled = true\naddr = \"{admin}\"\ntoken_file = \"{}\"\n",
        config_text(&idp, ""),
        dir.join("admin-token").display()
    );
    let (child, http, _) = spawn_serve("admin-serve", &text, std::process::Stdio::null());
    let _child = KillOnDrop(child);
    wait_until_up(admin);
    assert_eq!(request(admin, "GET", "/admin", b"", &[]).status, 401);
    let page = request(admin, "GET", "/admin/tenants/contoso", b"", &[("Authorization", &bearer())]);
    assert!(page.status == 200 && page.body.contains(SP), "{}", page.body);
    assert_eq!(request(http, "GET", "/admin", b"", &[("Authorization", &bearer())]).status, 404);
}

#[test]
fn admin_settings_are_checked_at_load() {
    let idp = TestIdp::generate().unwrap();
    let dir = temp_dir("admin-config");
    let short = dir.join("short");
    std::fs::write(&short, "too-short").unwrap();
    let (repetitive, good) = (dir.join("repetitive"), dir.join("good"));
    std::fs::write(&repetitive, "abababababababababababababababababab").unwrap();
    std::fs::write(&good, TOKEN).unwrap();
    let caller = format!("\n[[callers]]\nname = \"helpdesk\"\ntoken_sha256 = \"{}\"\n", sha256_hex(TOKEN));
    let cases = [
        ("[admin]\nenabled = true\ntoken_file = \"x\"\n", "admin.addr"),
        ("[admin]\nenabled = true\naddr = \"127.0.0.1:9091\"\n", "admin.token_file"),
        (
            &format!("[admin]\nenabled = true\naddr = \"127.0.0.1:9091\"\ntoken_file = \"{}\"\n", short.display()),
            "at least 32",
        ),
        ("[admin]\nenabled = true\naddr = \"127.0.0.1:8080\"\ntoken_file = \"x\"\n", "already another listener's"),
        ("[admin]\nenabld = true\n", "enabld"),
        (
            &format!("[admin]\nenabled = true\naddr = \"127.0.0.1:9091\"\ntoken_file = \"{}\"\n", repetitive.display()),
            "random token",
        ),
        (
            &format!("[admin]\nenabled = true\naddr = \"0.0.0.0:9091\"\ntoken_file = \"{}\"\n", good.display()),
            "in clear",
        ),
        (
            &format!(
                "[admin]\nenabled = true\naddr = \"127.0.0.1:9091\"\ntoken_file = \"{}\"\n{caller}",
                good.display()
            ),
            "also a [[callers]] token",
        ),
    ];
    for (section, expected) in cases {
        let text = format!(
            "{}{section}",
            config_text(&idp, "http_addr = \"127.0.0.1:8080\"").replace("http_addr = \"127.0.0.1:0\"\n", "")
        );
        let problems = Config::parse(&text, std::path::Path::new("."), Utc::now()).unwrap_err().to_string();
        assert!(problems.contains(expected), "{section}: {problems}");
    }
    let off = Config::parse(&config_text(&idp, ""), std::path::Path::new("."), Utc::now()).unwrap();
    assert!(off.admin.is_none(), "off by default");
    let relaxed = format!(
        "{}\n[admin]\nenabled = true\naddr = \"0.0.0.0:9091\"\nallow_plaintext_on_network = true\ntoken_file = \"{}\"\n",
        config_text(&idp, ""),
        good.display()
    );
    let relaxed = Config::parse(&relaxed, std::path::Path::new("."), Utc::now()).unwrap();
    assert!(relaxed.admin.unwrap().allow_plaintext_on_network);
}

// ---------------------------------------------------------------- a real browser

/// `chromedriver` on a free port, killed at the end, with one headless Chromium session.
struct Browser {
    _driver: KillOnDrop,
    base: String,
    session: String,
    agent: ureq::Agent,
    profile: std::path::PathBuf,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    fn start(name: &str) -> Browser {
        let port = free_port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/deps.sh installs it)");
        let driver = KillOnDrop(driver);
        wait_until_up(format!("127.0.0.1:{port}").parse().unwrap());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let profile = temp_dir(&format!("{name}-chromium"));
        let mut browser = Browser {
            _driver: driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent,
            profile,
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1800", format!("--user-data-dir={}", browser.profile.display())]}}}});
        let created = browser.call("POST", "/session", Some(&capabilities));
        browser.session = created["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(&json!({})).to_string()),
        }
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let text = response.body_mut().read_to_string().unwrap();
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        value["value"].clone()
    }

    fn session(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn open(&self, url: &str) {
        self.call("POST", &self.session("/url"), Some(&json!({"url": url})));
    }

    fn elements(&self, css: &str) -> Vec<String> {
        let found =
            self.call("POST", &self.session("/elements"), Some(&json!({"using": "css selector", "value": css})));
        found
            .as_array()
            .unwrap_or_else(|| panic!("{found}"))
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    /// The element, waiting (polling the page, up to 20 s) for the navigation that brings it.
    fn element(&self, css: &str) -> String {
        for _ in 0..200 {
            if let Some(found) = self.elements(css).into_iter().next() {
                return found;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no {css} on {}: {}", self.call("GET", &self.session("/url"), None), self.text("body"));
    }

    fn text(&self, css: &str) -> String {
        let element = self.elements(css).into_iter().next().unwrap_or_else(|| panic!("no {css}"));
        self.call("GET", &self.session(&format!("/element/{element}/text")), None).as_str().unwrap().to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.call("POST", &self.session(&format!("/element/{element}/value")), Some(&json!({"text": text})));
    }

    fn click(&self, css: &str) {
        let element = self.element(css);
        self.call("POST", &self.session(&format!("/element/{element}/click")), Some(&json!({})));
    }

    /// A paste: the textarea's value set at once (typing 8 KB key by key takes minutes).
    fn paste(&self, css: &str, text: &str) {
        let element = self.element(css);
        let script = "arguments[0].value = arguments[1];";
        self.call(
            "POST",
            &self.session("/execute/sync"),
            Some(&json!({"script": script, "args": [{ELEMENT: element}, text]})),
        );
    }

    fn css(&self, css: &str, property: &str) -> String {
        let element = self.element(css);
        let value = self.call("GET", &self.session(&format!("/element/{element}/css/{property}")), None);
        value.as_str().unwrap_or_default().to_string()
    }

    fn title(&self) -> String {
        self.call("GET", &self.session("/title"), None).as_str().unwrap().to_string()
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let png = self.call("GET", &self.session("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{name}: not a rendered page");
        let dir = if std::env::var_os("WRITE_SCREENSHOTS").is_some() {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs")
        } else {
            self.profile.clone()
        };
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.agent.delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
    }
}

#[test]
fn the_pages_work_in_a_real_browser_and_values_stay_text() {
    let idp = TestIdp::generate().unwrap();
    let s = start(&idp, "admin-browser");
    // A login refused on the validation listener, for the recent failures.
    let login = json!({"tenant": "contoso", "saml_response": wrong_key_response(), "expected_request_id": REQUEST_ID});
    let failed = validate_json(s.validate, &login);
    assert_eq!(failed.json()["error"]["code"], "signature_invalid");
    let browser = Browser::start("admin-browser");
    let admin = format!("http://{}", s.admin);

    // Without a session: the sign-in form, nothing else.
    browser.open(&format!("{admin}/admin"));
    browser.element("#token");
    assert!(browser.elements("#tenants").is_empty());
    browser.screenshot("admin-sign-in");
    browser.type_into("#token", TOKEN);
    browser.click("#sign-in");
    browser.element("#tenants");
    assert!(browser.text("#tenants").contains("contoso"), "{}", browser.text("#tenants"));
    // The style sheet is allowed by its hash in the CSP: had the hash been wrong, Chromium
    // would have blocked it and the header would keep the browser's default colours.
    assert_eq!(browser.css("header", "background-color"), "rgba(36, 41, 47, 1)");
    browser.screenshot("admin-tenants");

    browser.click("#tenants a");
    browser.element("#idp-fields");
    let fields = browser.text("#idp-fields");
    for expected in ["Identifier (Entity ID)", SP, "Reply URL", ACS, "Sign on URL", SIGN_ON] {
        assert!(fields.contains(expected), "{expected}: {fields}");
    }
    assert!(browser.text("#certificates").contains("pinned"));
    let failures = browser.text("#failures");
    assert!(
        failures.contains("signature_invalid") && failures.contains("NOT one of this tenant's certificates"),
        "{failures}"
    );
    browser.screenshot("admin-tenant");

    // The paste box: a response signed with another key than the pasted certificate.
    browser.paste("#saml_response", &wrong_key_response());
    browser.type_into("input[name=expected_request_id]", REQUEST_ID);
    browser.click("#explain-button");
    browser.element("#checks");
    assert!(browser.text("#verdict").contains("signature_invalid"), "{}", browser.text("#verdict"));
    assert!(browser.text(".document-certificates").contains("NO: the IdP signs with a certificate"));
    let checks = browser.text("#checks");
    assert!(checks.contains("destination") && !checks.contains("unsolicited_response"), "{checks}");
    browser.screenshot("admin-diagnose");

    // `<script>` in a pasted response's Issuer and in a tenant id in the path is shown as text
    // and never runs. (The attribute value carries one too, but the page never shows claims.)
    let attack = "\"><script>document.title='owned'</script><img src=x onerror=\"document.title='owned'\">";
    let mut spec = ResponseSpec::entra(IDP, SP, ACS, None, Utc::now(), 2, 3);
    spec.issuer = attack.to_string();
    spec.attributes.push(("display".into(), vec![attack.into()]));
    browser.paste("#saml_response", &post_binding(&spec.signed(&idp, Signing::Assertion).unwrap()));
    browser.click("#explain-button");
    browser.element("#checks");
    assert!(browser.text("#checks").contains("<script>document.title='owned'</script>"), "{}", browser.text("#checks"));
    assert!(browser.elements("script").is_empty() && browser.elements("main img").is_empty());
    assert!(!browser.title().contains("owned"));
    browser.open(&format!("{admin}/admin/tenants/%3Cscript%3Edocument.title%3D'owned'%3C%2Fscript%3E"));
    browser.element("#problem");
    assert!(
        browser.text("#problem").contains("<script>document.title='owned'</script>"),
        "{}",
        browser.text("#problem")
    );
    assert!(browser.elements("script").is_empty() && !browser.title().contains("owned"));

    // Signing out ends the session: the list is refused again.
    browser.open(&format!("{admin}/admin"));
    browser.click("header button");
    browser.element("#token");
    browser.open(&format!("{admin}/admin"));
    browser.element("#token");
    assert!(browser.elements("#tenants").is_empty());
}
