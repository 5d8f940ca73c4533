//! A real headless Chromium driven over WebDriver (`chromedriver`), for the panel's tests.
//!
//! Debian's `chromium` and `chromium-driver` (which `.ci/run` installs) are required: without
//! them the test fails and says so, it never skips. `chromedriver` listens on a port it picks
//! itself (`--port=0`, read back from what it prints); the browser gets a fresh profile and a
//! download directory of its own, both in temporary directories; dropping the [`Browser`] ends
//! the WebDriver session and kills `chromedriver` and everything it started.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thirtyfour::prelude::*;
use thirtyfour::{BrowserLogEntry, ChromiumLikeCapabilities, LoggingPrefsLogLevel};

pub use thirtyfour::By;

/// The desktop window every page is checked at.
pub const DESKTOP: (u32, u32) = (1280, 900);
/// A phone's window (an iPhone 12–15's CSS pixels).
pub const PHONE: (u32, u32) = (390, 844);

/// How long any one thing the browser waits for may take.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The flags the browser runs with: headless, and nothing that reaches out to Google's servers
/// (updates, sync, safe browsing lists, QUIC probes) so a run depends only on the server under test.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
];

/// `name` on `PATH`, or a failure that says how to install it.
fn required_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed (not on PATH). The panel's browser tests need Debian's \
                 `chromium` and `chromium-driver`: `.ci/run` installs them \
                 (apt-get install chromium chromium-driver)"
            )
        })
}

/// Where screenshots go: `<cargo target dir>/panel-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("panel-screenshots");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir.canonicalize().unwrap_or(dir)
}

/// The running `chromedriver`, in a process group of its own so that the browser it starts
/// (and the browser's helpers) go down with it.
#[derive(Debug)]
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// `env`: variables set for chromedriver, and so for the Chromium it starts.
    fn start(env: &[(&str, &Path)]) -> Driver {
        let program = required_program("chromedriver");
        let mut child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(&program)
                .envs(env.iter().copied())
                .arg("--port=0")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
        };
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut told = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // "ChromeDriver was started successfully on port 36021."
                if !told
                    && let Some(rest) = line.split_once("started successfully on port ")
                    && let Ok(port) = rest.1.trim_end_matches('.').trim().parse::<u16>()
                {
                    told = true;
                    let _ = tx.send(port);
                }
                // Then keep draining so chromedriver never blocks on a full pipe.
            }
        });
        let port = match rx.recv_timeout(PATIENCE) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("chromedriver did not say which port it listens on");
            }
        };
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver, the Chromium it started and Chromium's helpers.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium window.
#[derive(Debug)]
pub struct Browser {
    // Field order is drop order: the session first (closing Chromium), then chromedriver.
    driver: Option<WebDriver>,
    chromedriver: Driver,
    _profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
    /// Browser log entries read so far (reading drains chromedriver's buffer).
    log: Vec<BrowserLogEntry>,
}

impl Browser {
    pub async fn start() -> Browser {
        Browser::start_with_args(&[]).await
    }

    /// A browser with `extra` Chromium flags after the usual ones (Behalf Key's tests load the
    /// unpacked extension with them).
    pub async fn start_with_args(extra: &[String]) -> Browser {
        Browser::start_with_env(extra, &[]).await
    }

    /// As [`Browser::start_with_args`], with `env` set for chromedriver and the Chromium it
    /// starts (a `HOME` whose NSS database trusts a test CA, say: Chromium on Linux reads the
    /// user's trusted certificates from `$HOME/.pki/nssdb`).
    pub async fn start_with_env(extra: &[String], env: &[(&str, &Path)]) -> Browser {
        let chromium = required_program("chromium");
        let chromedriver = Driver::start(env);
        let profile = tempfile::tempdir().expect("a profile directory");
        let downloads = tempfile::tempdir().expect("a download directory");
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(chromium.to_str().expect("a UTF-8 path"))
            .unwrap();
        for flag in CHROMIUM_FLAGS {
            caps.add_arg(flag).unwrap();
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
            .unwrap();
        caps.add_arg(&format!("--window-size={},{}", DESKTOP.0, DESKTOP.1))
            .unwrap();
        for flag in extra {
            caps.add_arg(flag).unwrap();
        }
        caps.add_experimental_option(
            "prefs",
            json!({
                "download.default_directory": downloads.path(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            }),
        )
        .unwrap();
        // console.* output, uncaught script errors and CSP violations arrive as the "browser" log.
        caps.set_browser_log_level(LoggingPrefsLogLevel::All)
            .unwrap();
        let driver = WebDriver::new(chromedriver.url.as_str(), caps)
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
        let browser = Browser {
            driver: Some(driver),
            chromedriver,
            _profile: profile,
            downloads,
            log: Vec::new(),
        };
        browser.window(DESKTOP).await;
        // Headless Chromium downloads only where it is told to, through DevTools.
        browser
            .cdp(
                "Browser.setDownloadBehavior",
                json!({"behavior": "allow", "downloadPath": browser.downloads.path(), "eventsEnabled": false}),
            )
            .await;
        browser
    }

    pub fn driver(&self) -> &WebDriver {
        self.driver.as_ref().expect("the session is open")
    }

    /// A Chrome DevTools Protocol command through chromedriver's `goog/cdp/execute`.
    pub async fn cdp(&self, method: &str, params: Value) -> Value {
        let driver = self.driver();
        let session = driver.session_id().to_string();
        let http = reqwest::Client::new();
        let answer = http
            .post(format!(
                "{}/session/{session}/goog/cdp/execute",
                self.chromedriver.url
            ))
            .json(&json!({"cmd": method, "params": params}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or_default();
        assert!(status.is_success(), "{method}: {status} {body}");
        body["value"].clone()
    }

    /// Resizes the window (the viewport is what the page lays out in).
    pub async fn window(&self, (width, height): (u32, u32)) {
        self.driver()
            .set_window_rect(0, 0, width, height)
            .await
            .expect("the window resizes");
    }

    pub async fn goto(&self, url: &str) {
        self.driver()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    pub async fn current_url(&self) -> String {
        self.driver().current_url().await.unwrap().to_string()
    }

    /// The path (and query) of the page shown.
    pub async fn current_path(&self) -> String {
        let url = self.driver().current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Saves the page as `<target>/panel-screenshots/<name>.png` and prints where.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = screenshot_dir().join(format!("{name}.png"));
        let png = self
            .driver()
            .screenshot_as_png()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        assert!(
            png.starts_with(b"\x89PNG"),
            "screenshot {name} is not a PNG"
        );
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        // The test's output names every screenshot (nextest shows it with --no-capture or on failure).
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// The first element matching `css`, waiting for it up to [`PATIENCE`].
    pub async fn wait_for(&self, css: &str) -> WebElement {
        let what = format!("an element `{css}` on {}", self.current_path().await);
        self.eventually(&what, async |b| b.driver().find(By::Css(css)).await.ok())
            .await
    }

    /// Clicks the element matching `css`, waiting for it (and finding it again if the page
    /// replaced it in between).
    pub async fn click(&self, css: &str) {
        let what = format!("`{css}` to be clicked on {}", self.current_path().await);
        self.eventually(&what, async |b| {
            let element = b.driver().find(By::Css(css)).await.ok()?;
            element.click().await.ok()
        })
        .await;
    }

    /// Every element matching `css` now (no waiting).
    pub async fn all(&self, css: &str) -> Vec<WebElement> {
        self.driver()
            .find_all(By::Css(css))
            .await
            .unwrap_or_default()
    }

    /// Whether an element matches `css` now.
    pub async fn has(&self, css: &str) -> bool {
        !self.all(css).await.is_empty()
    }

    /// Polls `probe` until it answers `Some`, failing with `what` after [`PATIENCE`].
    pub async fn eventually<T>(
        &self,
        what: &str,
        mut probe: impl AsyncFnMut(&Browser) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = probe(self).await {
                return found;
            }
            if Instant::now() > deadline {
                let shot = self.screenshot("failure").await;
                panic!(
                    "waited {PATIENCE:?} for {what}; the page ({}) is in {}",
                    self.current_url().await,
                    shot.display()
                );
            }
            // The pace of polling, not a synchronisation: the condition above decides.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns what it returns.
    pub async fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.driver()
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
            .json()
            .clone()
    }

    /// Text of the element matching `css`, waiting for it. Found and read again if the page
    /// replaced it in between (a navigation, an htmx swap: a stale element).
    pub async fn text_of(&self, css: &str) -> String {
        let what = format!("the text of `{css}` on {}", self.current_path().await);
        self.eventually(&what, async |b| {
            let element = b.driver().find(By::Css(css)).await.ok()?;
            element.text().await.ok()
        })
        .await
    }

    /// Presses Tab until the focus has gone once round the page (at most `limit` times) and
    /// returns a description of each element that took it (`tag#id[name=value]`), in order.
    /// Going round (past the end, back to the top) is what makes it start-independent: an
    /// autofocused field or a clicked button is where Chromium's Tab starts from.
    pub async fn tab_order(&self, limit: usize) -> Vec<String> {
        self.script("window.__tabFirst = undefined;", vec![]).await;
        let mut seen = Vec::new();
        for _ in 0..limit {
            self.driver()
                .action_chain()
                .send_keys(Key::Tab)
                .perform()
                .await
                .unwrap();
            let focused = self
                .script(
                    "const e = document.activeElement; if (!e || e === document.body) return null; \
                     if (window.__tabFirst === e) return 'ROUND'; \
                     if (window.__tabFirst === undefined) window.__tabFirst = e; \
                     let d = e.tagName.toLowerCase(); if (e.id) d += '#' + e.id; \
                     if (e.getAttribute('name')) d += '[' + e.getAttribute('name') + '=' + (e.getAttribute('value') || '') + ']'; \
                     return d;",
                    vec![],
                )
                .await;
            match focused.as_str() {
                Some("ROUND") => return seen,
                Some(d) => seen.push(d.to_owned()),
                None => {}
            }
        }
        panic!("Tab did not come round the page in {limit} presses; it went through {seen:?}");
    }

    /// Every visible form control (input, select, textarea; not hidden fields) on the page that
    /// has no accessible name: no `label[for=its id]`, no enclosing `<label>`, no `aria-label`
    /// or `aria-labelledby`. Each is described as `tag#id[name]`.
    pub async fn unlabelled_controls(&self) -> Vec<String> {
        let found = self
            .script(
                "return Array.from(document.querySelectorAll('input, select, textarea'))\
                   .filter(e => e.type !== 'hidden')\
                   .filter(e => !((e.id && document.querySelector('label[for=\"' + CSS.escape(e.id) + '\"]'))\
                       || e.closest('label')\
                       || (e.getAttribute('aria-label') || '').trim()\
                       || (e.getAttribute('aria-labelledby') || '').trim()))\
                   .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '[' + (e.name || '') + ']');",
                vec![],
            )
            .await;
        serde_json::from_value(found).unwrap_or_default()
    }

    /// Browser log entries since the session began (console, script errors, CSP violations).
    pub async fn log(&mut self) -> &[BrowserLogEntry] {
        let fresh = self.driver().browser_log().await.unwrap_or_default();
        self.log.extend(fresh);
        &self.log
    }

    /// Fails if the browser logged an error (an uncaught exception, a `console.error`, a
    /// resource that failed to load, a Content-Security-Policy violation) since the session
    /// began, except the answers the test asked for: `expected` lists (path, status) of pages
    /// that answer an error status on purpose (a refused sign-in is a 401 page), which
    /// Chromium logs as failed loads.
    pub async fn assert_no_console_errors(&mut self, expected: &[(&str, u16)]) {
        let errors: Vec<String> = self
            .log()
            .await
            .iter()
            .filter(|e| e.level == "SEVERE")
            .map(|e| e.message.clone())
            .filter(|message| {
                let failed_load = |path: &str, status: u16| {
                    message
                        .split_once(
                            " - Failed to load resource: the server responded with a status of ",
                        )
                        .is_some_and(|(url, rest)| {
                            url.split_once("://")
                                .and_then(|(_, rest)| rest.split_once('/'))
                                .is_some_and(|(_, p)| format!("/{p}") == path)
                                && rest.starts_with(&status.to_string())
                        })
                };
                // Chromium asks every site for /favicon.ico by itself (no page asked for it);
                // the panel declares no icon, so that request is a 404 of the browser's own.
                !failed_load("/favicon.ico", 404)
                    && !expected
                        .iter()
                        .any(|(path, status)| failed_load(path, *status))
            })
            .collect();
        assert!(
            errors.is_empty(),
            "the browser logged errors:\n{}",
            errors.join("\n")
        );
    }

    /// The downloaded file whose name ends with `suffix`, waiting for it to be complete.
    pub async fn downloaded(&self, suffix: &str) -> PathBuf {
        let dir = self.downloads.path().to_owned();
        self.eventually(
            &format!("a download ending in {suffix} in {}", dir.display()),
            async |_| {
                let entries = std::fs::read_dir(&dir).ok()?;
                entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
                    let name = p.file_name().unwrap_or_default().to_string_lossy();
                    name.ends_with(suffix) && !name.ends_with(".crdownload")
                })
            },
        )
        .await
    }

    /// Cookies the browser holds for the page's site, as a `Cookie:` header value.
    pub async fn cookie_header(&self) -> String {
        self.driver()
            .get_all_cookies()
            .await
            .unwrap()
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Forgets every cookie (signs the browser out of the site).
    pub async fn clear_cookies(&self) {
        self.driver().delete_all_cookies().await.unwrap();
    }

    /// Ends the session cleanly (Chromium closes); dropping does the same, blocking.
    pub async fn quit(mut self) {
        if let Some(driver) = self.driver.take() {
            let _ = driver.quit().await;
        }
    }
}
