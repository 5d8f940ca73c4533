//! A real SMTP server for end-to-end tests (postfix's `smtp-sink`, installed by .ci/run) that
//! writes each message it receives to a file, and what the tests read back from those files.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// A running `smtp-sink`, killed when dropped; each message lands in `dir` as one file.
pub struct Sink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

impl Sink {
    /// smtp-sink cannot be given port 0, so a free port is found by binding one and letting it
    /// go; another process may take it in between, so a sink that exits at once is retried.
    pub fn start() -> Sink {
        assert!(
            Path::new(SMTP_SINK).exists(),
            "{SMTP_SINK} is missing: install postfix's smtp-sink as .ci/run does"
        );
        for _ in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().expect("addr").port()
            };
            let mut c = Command::new(SMTP_SINK);
            if running_as_root() {
                // smtp-sink refuses to run as root without dropping privileges.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
                    .expect("chmod");
                c.args(["-u", "nobody"]);
            }
            let mut child = c
                .arg("-d")
                .arg(format!("{}/%M.", dir.path().display()))
                .arg(format!("127.0.0.1:{port}"))
                .arg("100")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("smtp-sink starts");
            // Up when it accepts a connection; gone if the port was taken meanwhile.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sink { child, port, dir };
                }
                if child.try_wait().expect("try_wait").is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("smtp-sink did not start on a free port (10 tries)");
    }

    /// The messages received so far, waiting up to 30 s for at least `n`.
    pub fn messages(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
                .expect("read dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            let texts: Vec<String> = files
                .iter()
                .filter_map(|f| std::fs::read_to_string(f).ok())
                // smtp-sink writes the file as the message arrives: complete once it has a body.
                .filter(|t| t.contains("\n\n") || t.contains("\r\n\r\n"))
                .collect();
            if texts.len() >= n {
                return texts;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} mails arrived at smtp-sink",
                texts.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// RFC 2045 quoted-printable: soft line breaks and `=XX` (lettre may encode a body this way).
pub fn unquote(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// Every byte under `dir` (a data directory: the database file, its WAL, everything else), for
/// scanning for what must not be kept.
pub fn stored_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in walk(dir) {
        all.extend(std::fs::read(entry).unwrap_or_default());
    }
    all
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `needle` occurs in `haystack` byte for byte.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
